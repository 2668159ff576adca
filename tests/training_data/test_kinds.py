"""The table of dataset kinds: the rows each kind's builder makes pass that kind's own checks, kinds of one
shape read each other's exports, and every training method trains on a kind of the table."""

from __future__ import annotations

import pytest

from llm_feedback_loop.feedback.records import ComparisonRecord, CorrectionRecord, PromptGroup, RatingRecord
from llm_feedback_loop.storage.prompts import prompt_hash
from llm_feedback_loop.training.methods import all_methods
from llm_feedback_loop.training_data.kinds import KIND_NAMES, KINDS, kind_of
from llm_feedback_loop.training_data.options import DATASET_KINDS, ExportOptions

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]
GROUP = PromptGroup(
    prompt_hash(MESSAGES),
    "What is 2+2?",
    MESSAGES,
    ratings=[RatingRecord(1, "4", "up"), RatingRecord(2, "5", "down")],
    corrections=[CorrectionRecord(3, "5", "Four.")],
    comparisons=[ComparisonRecord(4, ["four", "fünf", "4"], [0, 2, 1], 0)],
)


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("row_format", ["standard", "conversational"])
def test_every_built_row_passes_its_kinds_checks(kind: str, row_format: str) -> None:
    produced = kind_of(kind).build_rows(GROUP, ExportOptions(kind, row_format))  # type: ignore[arg-type]
    assert produced.rows
    for built in produced.rows:
        assert tuple(built.row) == KINDS[kind].column_names
        assert KINDS[kind].row_problems(built.row) == []


def test_row_checks_name_the_field() -> None:
    assert kind_of("kto").row_problems({"prompt": "q", "completion": "a", "label": "yes"}) == [
        "field \"label\" must be true or false, not 'yes'"
    ]
    assert kind_of("dpo").row_problems({"prompt": "q", "chosen": "a", "rejected": "a"}) == [
        'fields "chosen" and "rejected" are the same answer'
    ]
    assert kind_of("sft").row_problems({"prompt": "q"}) == ['field "completion" is missing']
    assert kind_of("sft").row_problems([1]) == ["expected a JSON object, got list"]


def test_kinds_of_one_shape_read_each_other_and_the_table_is_the_only_list() -> None:
    assert kind_of("reward").reads("dpo") and kind_of("dpo").reads("reward")
    assert not kind_of("sft").reads("kto") and not kind_of("sft").reads("unknown")
    assert DATASET_KINDS == KIND_NAMES == ("sft", "dpo", "reward", "kto", "prompt")
    assert {method.kind for method in all_methods().values()} <= set(KINDS)
    with pytest.raises(ValueError, match="unknown dataset kind 'ppo'"):
        kind_of("ppo")


def test_the_prompt_kind_gives_each_prompt_once_whatever_its_feedback() -> None:
    """What online RL samples answers to: one row per prompt, with or without a preference in its feedback."""
    produced = kind_of("prompt").build_rows(GROUP, ExportOptions("prompt", "conversational"))
    assert [row.row for row in produced.rows] == [{"prompt": MESSAGES}]
    only_a_correction = PromptGroup(GROUP.prompt_hash, GROUP.prompt, MESSAGES, corrections=GROUP.corrections)
    assert kind_of("prompt").build_rows(only_a_correction, ExportOptions("prompt")).rows[0].source == "correction"
