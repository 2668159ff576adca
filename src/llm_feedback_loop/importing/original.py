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

from llm_feedback_loop.api import schemas
from llm_feedback_loop.api.errors import describe_error
from llm_feedback_loop.api.feedback_rows import legacy_comparison_values, legacy_rating_values

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
            return int(inner)
        if key in ("$numberDouble", "$numberDecimal"):
            return float(inner)
    return {key: unwrap_extended_json(item) for key, item in value.items()}


def _mongo_date(value: Any) -> datetime:
    if isinstance(value, dict):
        value = unwrap_extended_json(value)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return _mongo_date(value)
    except (TypeError, ValueError):
        raise ValueError(f"createdAt/updatedAt {value!r} is not a date") from None


def iter_documents(text: str) -> Iterator[tuple[int, Any | DocumentError]]:
    """(line number, decoded document or error) for each document in a JSON array, object or JSONL text."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from _array_documents(text)
        return
    if stripped.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            pass  # not one object: JSON Lines
        else:
            yield text[: len(text) - len(stripped)].count("\n") + 1, document
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            yield number, DocumentError(number, f"not valid JSON: {error.msg} (column {error.colno})")


def _array_documents(text: str) -> Iterator[tuple[int, Any | DocumentError]]:
    decoder = json.JSONDecoder()
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
        yield line, document


def parse_document(line: int, raw: Any) -> ParsedDocument | DocumentError:
    """One original document → row values, or an error saying what is wrong with it."""
    if not isinstance(raw, dict):
        return DocumentError(line, f"expected a JSON object, got {type(raw).__name__}")
    document = unwrap_extended_json(raw)
    try:
        if "rating" in document:
            kind: ImportKind = "rating"
            values = legacy_rating_values(schemas.LegacyRatingIn.model_validate(_payload(document)))
        elif "responses" in document:
            kind = "comparison"
            values = legacy_comparison_values(schemas.LegacyComparisonIn.model_validate(_payload(document)))
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
