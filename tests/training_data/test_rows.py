"""Dataset rows per kind and format, dedupe, and the train/test split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llm_feedback_loop.feedback.records import ComparisonRecord, CorrectionRecord, PromptGroup, RatingRecord
from llm_feedback_loop.storage.prompts import prompt_hash
from llm_feedback_loop.training_data.options import ExportOptions
from llm_feedback_loop.training_data.rows import rows_for_group
from llm_feedback_loop.training_data.split import exact_test_prompts, split_of

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]


def group(**feedback) -> PromptGroup:
    return PromptGroup(prompt_hash(MESSAGES), "What is 2+2?", MESSAGES, **feedback)


def rows(kind: str, g: PromptGroup, **options) -> list[dict]:
    return [r.row for r in rows_for_group(g, ExportOptions(kind, **options)).rows]  # type: ignore[arg-type]


def test_sft_takes_upvoted_answers_and_corrections() -> None:
    g = group(
        ratings=[RatingRecord(1, "4", "up"), RatingRecord(2, "5", "down"), RatingRecord(3, "4", "up")],
        corrections=[CorrectionRecord(4, "5", "Four.")],
        comparisons=[ComparisonRecord(5, ["four", "fünf"], [0, 1], 0)],
    )
    assert rows("sft", g) == [
        {"prompt": "What is 2+2?", "completion": "4"},
        {"prompt": "What is 2+2?", "completion": "Four."},
    ]
    assert rows("sft", g, dedupe=False) == [
        {"prompt": "What is 2+2?", "completion": "4"},
        {"prompt": "What is 2+2?", "completion": "4"},
        {"prompt": "What is 2+2?", "completion": "Four."},
    ]
    assert rows("sft", g, sft_include_comparisons=True)[-1] == {"prompt": "What is 2+2?", "completion": "four"}


def test_sft_skips_answers_voted_down_overall() -> None:
    g = group(ratings=[RatingRecord(1, "4", "up"), RatingRecord(2, "4", "down"), RatingRecord(3, "4", "down")])
    assert rows("sft", g) == []


def test_conversational_rows_keep_the_whole_conversation() -> None:
    g = group(ratings=[RatingRecord(1, "4", "up")])
    assert rows("sft", g, format="conversational") == [
        {"prompt": MESSAGES, "completion": [{"role": "assistant", "content": "4"}]}
    ]


def test_dpo_rows_and_reward_rows_hold_chosen_and_rejected() -> None:
    g = group(comparisons=[ComparisonRecord(1, ["5", "4"], [1, 0], 1)])
    expected = [{"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}]
    assert rows("dpo", g) == expected
    assert rows("reward", g) == expected
    assert rows("dpo", g, format="conversational") == [
        {
            "prompt": MESSAGES,
            "chosen": [{"role": "assistant", "content": "4"}],
            "rejected": [{"role": "assistant", "content": "5"}],
        }
    ]


def test_dpo_without_dedupe_repeats_a_pair_once_per_vote() -> None:
    g = group(comparisons=[ComparisonRecord(i, ["5", "4"], [1, 0], 1) for i in range(3)])
    assert len(rows("dpo", g)) == 1
    assert len(rows("dpo", g, dedupe=False)) == 3


def test_kto_labels_by_majority_and_drops_ties() -> None:
    g = group(
        ratings=[
            RatingRecord(1, "4", "up"),
            RatingRecord(2, "5", "down"),
            RatingRecord(3, "22", "up"),
            RatingRecord(4, "22", "down"),
        ]
    )
    produced = rows_for_group(g, ExportOptions("kto"))
    assert [(r.row["completion"], r.row["label"]) for r in produced.rows] == [("4", True), ("5", False)]
    assert produced.ties_dropped == 1
    assert len(rows("kto", g, dedupe=False)) == 4


def test_split_is_deterministic_and_depends_on_the_seed() -> None:
    hashes = [prompt_hash([{"role": "user", "content": f"prompt {i}"}]) for i in range(2000)]
    sides = [split_of(h, 0.2, seed=1) for h in hashes]
    assert sides == [split_of(h, 0.2, seed=1) for h in hashes]
    assert 0.15 < sides.count("test") / len(sides) < 0.25
    assert sides != [split_of(h, 0.2, seed=2) for h in hashes]
    assert {split_of(h, 0.0) for h in hashes} == {"train"}


def test_an_exact_split_holds_out_the_share_of_a_few_prompts() -> None:
    hashes = [prompt_hash([{"role": "user", "content": f"prompt {i}"}]) for i in range(20)]
    held_out = exact_test_prompts(hashes, 0.2, seed=0)
    assert len(held_out) == 4 and held_out <= set(hashes)
    assert held_out == exact_test_prompts(list(reversed(hashes)), 0.2, seed=0)  # not the order read
    assert held_out != exact_test_prompts(hashes, 0.2, seed=1)
    assert [len(exact_test_prompts(hashes[:n], 0.2)) for n in (0, 1, 2, 3, 7, 8)] == [0, 0, 1, 1, 1, 2]
    assert len(exact_test_prompts(hashes[:2], 0.9)) == 1  # never every prompt
    assert exact_test_prompts(hashes, 0.0) == set()


@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=8), st.sampled_from(["up", "down"])), max_size=60),
    st.floats(min_value=0.05, max_value=0.95),
    st.integers(min_value=0, max_value=10),
)
def test_no_prompt_lands_on_both_sides(feedback: list[tuple[str, str]], test_size: float, seed: int) -> None:
    sides: dict[str, set[str]] = {}
    for text, _ in feedback:
        messages = [{"role": "user", "content": text}]
        sides.setdefault(text, set()).add(split_of(prompt_hash(messages), test_size, seed))
    assert all(len(s) == 1 for s in sides.values())
