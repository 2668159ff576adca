"""What JSON the database may hold, and the one way it is written and read.

Everything stored in a JSON column is written by `dumps` and read by orjson, so what is written can always
be read back. `check_json_value` refuses, before anything is stored, what either side would choke on or what
would make reads expensive: NaN and Infinity (not JSON), integers outside 64 bits, NUL characters
(PostgreSQL's jsonb refuses them), lone surrogates (not UTF-8), deep nesting and huge values.
`loads_strict` parses text under the same rules (request bodies, task files, imports).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what every backend's integer and JSON number can hold
MAX_FREE_DEPTH = 32  # a free field (metadata, parameters) nested deeper than this is refused
MAX_FREE_BYTES = 65_536  # ... and one larger than this as JSON
MAX_DOCUMENT_DEPTH = 64  # a whole request body or file line: room for the free fields inside it


class JSONValueError(ValueError):
    """A JSON value that cannot be stored; `path` is where in it (keys and indices), `message` what is wrong."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        self.message = message
        self.path = path
        super().__init__(f"{describe_path(path)}: {message}" if path else message)


def describe_path(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path)


def dumps(value: Any) -> str:
    """The JSON text of a column value (SQLAlchemy's `json_serializer`). Non-string keys become strings, as
    the stdlib writes them; NaN and Infinity (refused on the way in) would become null, which stays readable."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


def loads(text: str | bytes) -> Any:
    """A column value from its JSON text (SQLAlchemy's `json_deserializer`): orjson, the hot path of exports.
    Rows written before `dumps` was the serializer may hold NaN or Infinity, which orjson refuses: those are
    read with the stdlib as null rather than failing every list that includes them."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, parse_constant=lambda _: None)


def clean_string(value: str) -> str | None:
    """Why `value` cannot be stored (NUL, lone surrogate), or None if it can."""
    if "\x00" in value:
        return "must not contain the NUL character (\\u0000)"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain lone surrogates (\\ud800-\\udfff): not valid Unicode text"
    return None


def _problem(value: Any, depth: int, max_depth: int, strings: bool, path: list[str | int]) -> str | None:
    """The first problem in `value` (appending where it is to `path`), or None. Recursion is bounded by
    `max_depth`: a deeper value is refused before its inside is looked at."""
    if isinstance(value, str):
        return clean_string(value) if strings else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            return "integers must be between -2**63 and 2**63-1"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite (no NaN or Infinity)"
    if isinstance(value, dict | list):
        if depth >= max_depth:
            return f"nested deeper than {max_depth} levels"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and strings:
                key_problem = clean_string(key)
                if key_problem is not None:
                    path.append(key)
                    return f"key {key_problem}"
            elif not isinstance(key, str | int):
                return "keys must be strings"
            problem = _problem(item, depth + 1, max_depth, strings, path)
            if problem is not None:
                path.insert(0, key)
                return problem
        return None
    return f"{type(value).__name__} is not a JSON value"


def check_json_value(value: Any, max_depth: int = MAX_FREE_DEPTH, max_bytes: int | None = MAX_FREE_BYTES) -> None:
    """Raise JSONValueError (naming where) unless `value` is JSON the database can store and read back."""
    path: list[str | int] = []
    problem = _problem(value, 0, max_depth, True, path)
    if problem is not None:
        raise JSONValueError(problem, tuple(path))
    if max_bytes is not None and len(orjson.dumps(value)) > max_bytes:
        raise JSONValueError(f"is larger than {max_bytes} bytes as JSON")


class _BigInteger:
    """Stands for an integer literal outside 64 bits, so its place in the document can be named."""


_BIG = _BigInteger()


def _int_or_big(text: str) -> int | _BigInteger:
    # Digits are counted before converting: no 4,300-digit conversion, no ValueError.
    if len(text.lstrip("-")) > 19 or not INT_MIN <= int(text) <= INT_MAX:
        return _BIG
    return int(text)


def _path_of(value: Any, target: Any, path: list[str | int]) -> bool:
    if value is target:
        return True
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if _path_of(item, target, path):
            path.insert(0, key)
            return True
    return False


def _big_integer_path(text: str | bytes) -> tuple[str | int, ...] | None:
    """Where an integer literal outside 64 bits is, or None. orjson reads those as floats: the stdlib parser,
    told to mark each such literal, tells them from floats written as floats (1e20)."""
    value = json.loads(text, parse_int=_int_or_big)
    path: list[str | int] = []
    return tuple(path) if _path_of(value, _BIG, path) else None


def _has_integral_huge_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and abs(item) >= 2**63 and item.is_integer():
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _needs_a_closer_look(value: Any, max_depth: int) -> bool:
    """False for the common document: no container at depth `max_depth`, no integer outside 64 bits, no
    non-finite or integral huge float. A loop without a call per value: 5x faster than `_problem` on request
    bodies, which then runs only for the rare one that has something to name."""
    if type(value) is not dict and type(value) is not list:
        return type(value) is not str  # a bare number or literal: let `_problem` judge it
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        container, depth = stack.pop()
        if depth >= max_depth:
            return True
        for item in container.values() if type(container) is dict else container:
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if kind is int:
                if not INT_MIN <= item <= INT_MAX:
                    return True
            elif kind is float:
                if not -(2.0**63) < item < 2.0**63:  # also NaN and the infinities
                    return True
            elif kind is dict or kind is list:
                stack.append((item, depth + 1))
            else:
                return True
    return False


def loads_strict(text: str | bytes, max_depth: int = MAX_DOCUMENT_DEPTH, strings: bool = False) -> Any:
    """Parse JSON text, refusing NaN/Infinity, lone surrogates, invalid UTF-8, integers outside 64 bits and
    nesting deeper than `max_depth` (JSONValueError). `strings=True` also refuses NUL in strings."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        reason = str(error)
        if "infinity when parsed" in reason:
            raise JSONValueError("a number is too large: integers must be between -2**63 and 2**63-1") from None
        if "depth limit" in reason:
            raise JSONValueError(f"nested deeper than {max_depth} levels") from None
        at = text[error.pos : error.pos + 9]
        if isinstance(at, bytes):
            at = at.decode("utf-8", "replace")
        if at.startswith(("NaN", "Infinity", "-Infinity")):
            reason = f"{at.rstrip(',}] ')} is not a JSON number (numbers must be finite), at character {error.pos}"
        raise JSONValueError(f"not valid JSON: {reason}") from None
    if not strings and not _needs_a_closer_look(value, max_depth):
        return value
    path: list[str | int] = []
    problem = _problem(value, 0, max_depth, strings, path)
    if problem is not None:
        raise JSONValueError(problem, tuple(path))
    if _has_integral_huge_float(value):  # rare: only then is the text parsed a second time
        big = _big_integer_path(text)
        if big is not None:
            raise JSONValueError("integers must be between -2**63 and 2**63-1", big)
    return value
