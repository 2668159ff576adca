"""Importing the original project's data: its JSON payloads and MongoDB exports of both collections."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from llm_feedback_loop.importing.original import DocumentError, ParsedDocument, parse_text, unwrap_extended_json
from tests.support.payloads import README_COMPARISON, README_RATING

MONGOEXPORT_RATING = (
    '{"_id":{"$oid":"665f1c2e9b1e8a0012345678"},"prompt":"Apa itu Kubernetes?",'
    '"response":"Sistem orkestrasi kontainer.","rating":"up","model":"tinyllama",'
    '"createdAt":{"$date":"2025-06-04T10:00:00.000Z"},"updatedAt":{"$date":"2025-06-04T11:00:00.000Z"},"__v":0}'
)
MONGOEXPORT_COMPARISON = (
    '{"_id":{"$oid":"665f1c2e9b1e8a0012345679"},"prompt":"Apa itu Kubernetes?",'
    '"responses":[{"id":"1","text":"Kubernetes adalah sistem orkestrasi kontainer."},'
    '{"id":"2","text":"Kubernetes digunakan untuk mengelola container dan deployment."}],'
    '"ranking":[{"$numberInt":"1"},{"$numberInt":"0"}],"comment":"Jawaban kedua lebih lengkap.",'
    '"createdAt":{"$date":{"$numberLong":"1717495200000"}},"__v":0}'
)


def parsed(text: str) -> tuple[list[ParsedDocument], list[DocumentError]]:
    items = list(parse_text(text))
    return [i for i in items if isinstance(i, ParsedDocument)], [i for i in items if isinstance(i, DocumentError)]


def test_mongoexport_lines_of_both_collections() -> None:
    good, bad = parsed(MONGOEXPORT_RATING + "\n" + MONGOEXPORT_COMPARISON + "\n")
    assert not bad
    rating, comparison = good
    assert rating.kind == "rating" and rating.values["response"] == "Sistem orkestrasi kontainer."
    assert rating.values["created_at"] == datetime(2025, 6, 4, 10, tzinfo=UTC)
    assert rating.values["updated_at"] == datetime(2025, 6, 4, 11, tzinfo=UTC)
    assert rating.values["metadata"] == {"source_id": "665f1c2e9b1e8a0012345678"}
    assert comparison.kind == "comparison" and comparison.values["ranking"] == [1, 0]
    assert comparison.values["created_at"] == datetime(2024, 6, 4, 10, tzinfo=UTC)
    assert comparison.line == 2


def test_json_array_single_object_and_plain_payloads() -> None:
    good, bad = parsed(json.dumps([README_RATING, README_COMPARISON], indent=2))
    assert not bad and [d.kind for d in good] == ["rating", "comparison"]
    assert good[1].line > good[0].line > 1
    good, bad = parsed(json.dumps(README_COMPARISON))
    assert not bad and [d.kind for d in good] == ["comparison"]
    good, _ = parsed("[" + MONGOEXPORT_RATING + "," + MONGOEXPORT_COMPARISON + "]")
    assert [d.kind for d in good] == ["rating", "comparison"]


def test_bad_lines_are_reported_with_their_line_numbers() -> None:
    text = "\n".join(
        [
            json.dumps(README_RATING),
            "",
            json.dumps(README_RATING | {"rating": "meh"}),
            "{not json",
            json.dumps({"prompt": "no kind"}),
            json.dumps(README_COMPARISON | {"ranking": [0, 5]}),
            json.dumps(README_RATING | {"createdAt": "yesterday"}),
            "[1]",
        ]
    )
    good, bad = parsed(text)
    assert [d.line for d in good] == [1]
    assert [(e.line, e.message.split(":")[0]) for e in bad] == [
        (3, "rating"),
        (4, "not valid JSON"),
        (5, "neither a rating (no 'rating' field) nor a comparison (no 'responses' field)"),
        (6, "ranking must list each response index 0..1 exactly once (best first), got [0, 5]"),
        (7, "createdAt/updatedAt 'yesterday' is not a date"),
        (8, "expected a JSON object, got list"),
    ]


def test_unclosed_array_is_reported() -> None:
    _, bad = parsed("[" + json.dumps(README_RATING) + ",\n")
    assert bad and "not closed" in bad[0].message


def test_extended_json_numbers_and_ids_unwrap() -> None:
    assert unwrap_extended_json({"a": {"$numberLong": "7"}, "b": [{"$numberDouble": "1.5"}], "c": {"$oid": "ff"}}) == {
        "a": 7,
        "b": [1.5],
        "c": "ff",
    }


def test_documents_the_database_could_not_store_are_errors_with_their_line() -> None:
    good = json.dumps(README_RATING)
    bad_lines = [
        "[" * 5000 + "]" * 5000,  # was a RecursionError
        json.dumps(README_RATING | {"metadata": {"x": float("nan")}}),  # the stdlib writes NaN
        '{"prompt": "p", "response": "r", "rating": "up", "metadata": {"n": ' + "9" * 5000 + "}}",
        '{"prompt": "\\ud800", "response": "r", "rating": "up"}',
        json.dumps(README_RATING | {"createdAt": "9999-12-31T23:59:59-05:00"}),
        json.dumps(README_RATING | {"createdAt": {"$date": {"$numberLong": "9" * 30}}}),
    ]
    documents, errors = parsed("\n".join([good, *bad_lines]))
    assert len(documents) == 1
    assert [error.line for error in errors] == list(range(2, 2 + len(bad_lines)))
    assert "nested deeper than" in errors[0].message and "NaN" in errors[1].message
    assert "too large" in errors[2].message and "surrogate" in errors[3].message
    assert "years 1 to 9999" in errors[4].message and "64-bit" in errors[5].message


def test_an_array_with_a_bad_number_is_reported() -> None:
    documents, errors = parsed("[" + json.dumps(README_RATING) + ', {"prompt": "p", "metadata": {"x": NaN}}]')
    assert len(documents) == 1 and len(errors) == 1 and "NaN" in errors[0].message
    documents, errors = parsed(
        '[{"prompt": "p", "response": "r", "rating": "up", "metadata": {"n": ' + "9" * 30 + "}}]"
    )
    assert not documents and "64-bit" in errors[0].message
