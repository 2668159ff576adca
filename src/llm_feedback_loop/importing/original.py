"""Parse the original project's feedback documents: pure functions, no database.

Accepted: a JSON array, one JSON object, or JSON Lines; each document is a rating (`rating` field,
the `feedbacks` collection) or a comparison (`responses` field, the `rlhffeedbacks` collection).
MongoDB extended JSON from `mongoexport` (`{"$oid": ...}`, `{"$date": ...}`, `{"$numberInt": ...}`)
is unwrapped; `_id` is kept as `metadata.source_id` and `createdAt`/`updatedAt` as the timestamps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from llm_feedback_loop.feedback.payloads import LegacyComparisonIn, LegacyRatingIn, describe_error
from llm_feedback_loop.feedback.rows import legacy_comparison_values, legacy_rating_values
from llm_feedback_loop.storage.json_values import (
    INT_MAX,
    INT_MIN,
    MAX_DOCUMENT_DEPTH,
    JSONValueError,
    check_json_value,
    loads_strict,
)

ImportKind = Literal["rating", "comparison"]


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    line: int
    kind: ImportKind
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DocumentError:
    line: int
    message: str


def unwrap_extended_json(value: Any) -> Any:
    """MongoDB extended JSON → plain values (ObjectId → str, dates → datetime, numbers → int/float)."""
    if isinstance(value, list):
        return [unwrap_extended_json(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key == "$oid":
            return str(inner)
        if key == "$date":
            return _mongo_date(inner)
        if key in ("$numberInt", "$numberLong"):
            return _bounded_int(inner)
        if key in ("$numberDouble", "$numberDecimal"):
            return float(inner)
    return {key: unwrap_extended_json(item) for key, item in value.items()}


def _bounded_int(value: Any) -> int:
    text = str(value).strip()
    if len(text.lstrip("+-")) > 19 or not INT_MIN <= int(text) <= INT_MAX:
        raise ValueError(f"{text[:40]} is not a 64-bit integer")
    return int(text)


def _mongo_date(value: Any) -> datetime:
    if isinstance(value, dict):
        value = unwrap_extended_json(value)
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        # Stored in UTC: a time whose offset takes it past year 1 or 9999 cannot be.
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    except OSError as error:  # a timestamp past what the platform's time functions take
        raise OverflowError(str(error)) from error


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return _mongo_date(value)
    except OverflowError:
        raise ValueError(
            f"createdAt/updatedAt {str(value)[:60]!r} is outside the dates that can be stored (years 1 to 9999 in UTC)"
        ) from None
    except (TypeError, ValueError):
        raise ValueError(f"createdAt/updatedAt {str(value)[:60]!r} is not a date") from None


def iter_documents(text: str) -> Iterator[tuple[int, Any | DocumentError]]:
    """(line number, decoded document or error) for each document in a JSON array, object or JSONL text."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from _array_documents(text)
        return
    if stripped.startswith("{"):
        try:
            document = loads_strict(text, MAX_DOCUMENT_DEPTH, strings=True)
        except JSONValueError:
            pass  # not one object: JSON Lines, each line's error reported on its own
        else:
            yield text[: len(text) - len(stripped)].count("\n") + 1, document
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            # Strict: no NaN, lone surrogates, integers past 64 bits or deep nesting (not a RecursionError).
            yield number, loads_strict(line, MAX_DOCUMENT_DEPTH, strings=True)
        except JSONValueError as error:
            yield number, DocumentError(number, str(error))


def _refuse_constant(name: str) -> Any:
    raise JSONValueError(f"{name} is not a JSON number (numbers must be finite)")


def _array_documents(text: str) -> Iterator[tuple[int, Any | DocumentError]]:
    # The stdlib's raw_decode gives each element's position (its line number); the hooks and the check of
    # each document hold it to the rules `loads_strict` applies to lines.
    decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_bounded_json_int)
    position = text.index("[") + 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        line = text.count("\n", 0, position) + 1
        if position >= len(text):
            yield line, DocumentError(line, "the JSON array is not closed with ]")
            return
        if text[position] == "]":
            return
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            yield line, DocumentError(error.lineno, f"not valid JSON: {error.msg} (column {error.colno})")
            return
        except JSONValueError as error:
            yield line, DocumentError(line, f"{error}; the rest of the array is not read")
            return
        except RecursionError:
            yield line, DocumentError(line, f"nested deeper than {MAX_DOCUMENT_DEPTH} levels; the rest is not read")
            return
        try:
            check_json_value(document, MAX_DOCUMENT_DEPTH, max_bytes=None)
        except JSONValueError as error:
            yield line, DocumentError(line, str(error))
            continue
        yield line, document


def _bounded_json_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not INT_MIN <= int(text) <= INT_MAX:
        raise JSONValueError(f"{text[:40]}{'...' * (len(text) > 40)} is not a 64-bit integer (-2**63 to 2**63-1)")
    return int(text)


def parse_document(line: int, raw: Any) -> ParsedDocument | DocumentError:
    """One original document → row values, or an error saying what is wrong with it."""
    if not isinstance(raw, dict):
        return DocumentError(line, f"expected a JSON object, got {type(raw).__name__}")
    try:
        document = unwrap_extended_json(raw)
        if "rating" in document:
            kind: ImportKind = "rating"
            values = legacy_rating_values(LegacyRatingIn.model_validate(_payload(document)))
        elif "responses" in document:
            kind = "comparison"
            values = legacy_comparison_values(LegacyComparisonIn.model_validate(_payload(document)))
        else:
            return DocumentError(line, "neither a rating (no 'rating' field) nor a comparison (no 'responses' field)")
        created = _timestamp(document.get("createdAt"))
        updated = _timestamp(document.get("updatedAt"))
    except ValidationError as error:
        return DocumentError(line, "; ".join(describe_error(e) for e in error.errors()))  # type: ignore[arg-type]
    except ValueError as error:
        return DocumentError(line, str(error))
    if created is not None:
        values["created_at"] = created
        values["updated_at"] = updated or created
    if "_id" in document:
        values["metadata"] = {**(values.get("metadata") or {}), "source_id": str(document["_id"])}
    return ParsedDocument(line, kind, values)


_ORIGINAL_FIELDS = {
    "prompt",
    "response",
    "rating",
    "model",
    "responses",
    "ranking",
    "bestIndex",
    "comment",
    "annotator",
    "metadata",
}


def _payload(document: dict[str, Any]) -> dict[str, Any]:
    """The fields the payload models know; Mongo's bookkeeping (`_id`, `__v`, timestamps) is dropped."""
    return {key: value for key, value in document.items() if key in _ORIGINAL_FIELDS}


def parse_text(text: str) -> Iterator[ParsedDocument | DocumentError]:
    for line, raw in iter_documents(text):
        yield raw if isinstance(raw, DocumentError) else parse_document(line, raw)
