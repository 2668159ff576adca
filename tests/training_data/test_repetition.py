"""Repetition pairs: a liked list preferred to itself repeated, on the training side of an export only."""

from __future__ import annotations

import pytest

from llm_feedback_loop.training_data.options import ExportOptions
from llm_feedback_loop.training_data.repetition import is_list, repeated
from llm_feedback_loop.training_data.rows import DatasetRow, repetition_row


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # its first item in place of the others, each line keeping its marker, at least three lines
        ("1. Bread.\n2. Milk is a drink.", "1. Bread.\n2. Bread.\n3. Bread."),
        ("- a b\n- c d\n- e f\n- g h", "- a b\n- a b\n- a b\n- a b"),
        ("* a\n\n* b", "* a\n* a\n* a"),
        # lines before the first item are kept; the items repeat
        ("Here are some:\n1. A\n2. B", "Here are some:\n1. A\n2. A\n3. A"),
        # a line inside the list that is not an item becomes the first item, unmarked
        ("1. A\nmore about A\n2. B", "1. A\nA\n2. A"),
    ],
)
def test_a_list_is_repeated_by_its_first_item(text: str, expected: str) -> None:
    assert repeated(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "1. A\n\n2. A\n\n3. A",  # already repeating
        "Paris is the capital. It is in France.",  # not a list: sentences,
        "line one\nline two",  # lines,
        "1. Only one item.",  # one item
    ],
)
def test_an_answer_that_is_not_a_list_or_already_repeats_gives_none(text: str) -> None:
    assert repeated(text) is None


@pytest.mark.parametrize(
    ("text", "listed"),
    [
        ("1. Bread.\n2. Milk.", True),
        ("Here are some:\n- a\n* b", True),
        ("  1) a\n  2) b\n", True),
        ("1. Only one item.", False),
        ("Paris is the capital. It is in France.", False),
        ("line one\nline two", False),
    ],
)
def test_a_list_is_two_or_more_marked_lines(text: str, listed: bool) -> None:
    assert is_list(text) is listed


def test_only_a_liked_list_gets_a_repetition_row() -> None:
    def pair(chosen: object) -> list[DatasetRow]:
        return [DatasetRow({"prompt": "Q?", "chosen": chosen, "rejected": "No."}, "comparison")]

    row = repetition_row(pair("1. A\n2. B"))
    assert row is not None and row.source == "repetition"
    assert row.row == {"prompt": "Q?", "chosen": "1. A\n2. B", "rejected": "1. A\n2. A\n3. A"}
    assert repetition_row(pair("One sentence. Another sentence.")) is None
    assert repetition_row(pair("1. A\n2. A\n3. A")) is None  # already repeating
    talk = repetition_row(pair([{"role": "assistant", "content": "- x\n- y"}]))
    assert talk is not None and talk.row["rejected"] == [{"role": "assistant", "content": "- x\n- x\n- x"}]


def test_only_pair_kinds_take_repetition_pairs() -> None:
    for kind in ("sft", "kto", "prompt"):
        with pytest.raises(ValueError, match="repetition pairs"):
            ExportOptions(kind, repetition_pairs=True)  # type: ignore[arg-type]
    assert ExportOptions("reward", repetition_pairs=True).as_dict()["repetition_pairs"] is True
    assert "repetition_pairs" not in ExportOptions("dpo").as_dict()


def test_a_long_first_item_among_many_short_ones_is_not_repeated_without_bound() -> None:
    lines = "1. " + "x" * 5_000 + "\n" + "\n".join(["- y"] * 10_000)
    result = repeated(lines)
    assert result is not None and result.startswith("1. " + "x" * 5_000 + "\n- " + "x" * 5_000)
    assert len(result) <= 2 * len(lines) + 2 * 5_004
