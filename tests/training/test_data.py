"""Training data is checked before any model is loaded: bad rows are reported by file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_feedback_loop.training.data import DatasetError, load_training_data, to_dataset
from llm_feedback_loop.training.methods.kto import balanced_weights
from llm_feedback_loop.training_data.kinds import to_conversational


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


PAIR = {"prompt": "What is 2+2?", "chosen": "2 + 2 = 4.", "rejected": "5"}


@pytest.mark.parametrize(
    ("method", "rows", "message"),
    [
        ("dpo", [PAIR, "{not json"], "pairs.jsonl:2: not valid JSON"),
        ("dpo", [PAIR, {"prompt": "q", "chosen": "a"}], 'pairs.jsonl:2: field "rejected" is missing'),
        ("dpo", [{"prompt": "", "chosen": "a", "rejected": "b"}], 'pairs.jsonl:1: field "prompt" is empty'),
        ("dpo", [{"prompt": "q", "chosen": 3, "rejected": "b"}], 'pairs.jsonl:1: field "chosen" must be text'),
        ("dpo", [{"prompt": "q", "chosen": "a", "rejected": "a"}], 'pairs.jsonl:1: fields "chosen" and'),
        ("sft", [{"prompt": "q", "chosen": "a", "rejected": "b"}], 'pairs.jsonl:1: field "completion" is missing'),
        ("kto", [{"prompt": "q", "completion": "a", "label": "yes"}], 'field "label" must be true or false'),
        (
            "sft",
            [{"prompt": [{"role": "robot", "content": "hi"}], "completion": "a"}],
            'pairs.jsonl:1: field "prompt" message 0 has role',
        ),
        ("sft", [[1, 2]], "pairs.jsonl:1: expected a JSON object"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path: Path, method: str, rows: list, message: str) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    with pytest.raises(DatasetError, match="nothing trained") as raised:
        load_training_data(path, method)  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_empty_and_missing_datasets_are_named(tmp_path: Path) -> None:
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    with pytest.raises(DatasetError, match=r"empty\.jsonl holds no training rows"):
        load_training_data(empty, "dpo")
    with pytest.raises(DatasetError, match=r"missing\.jsonl does not exist"):
        load_training_data(tmp_path / "missing.jsonl", "dpo")


def test_kto_needs_both_labels(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "kto.jsonl", [{"prompt": "q", "completion": "a", "label": True}] * 3)
    with pytest.raises(DatasetError, match="both desirable"):
        load_training_data(path, "kto")


def test_an_export_with_a_test_split_is_found_by_its_name(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "pairs.train.jsonl", [PAIR] * 3)
    write_jsonl(tmp_path / "pairs.test.jsonl", [PAIR])
    (tmp_path / "pairs.manifest.json").write_text(json.dumps({"options": {"kind": "dpo"}}))
    data = load_training_data(tmp_path / "pairs.jsonl", "dpo")  # the --out name given to `llmfl export`
    assert len(data.train) == 3 and len(data.test) == 1
    assert set(data.files) == {"pairs.train.jsonl", "pairs.test.jsonl"}
    assert all(len(digest) == 64 for digest in data.files.values())
    with pytest.raises(DatasetError, match="is a dpo export; sft needs"):
        load_training_data(tmp_path / "pairs.train.jsonl", "sft")


def test_plain_text_rows_become_chat_messages() -> None:
    row = to_conversational(PAIR)
    assert row["prompt"] == [{"role": "user", "content": "What is 2+2?"}]
    assert row["chosen"] == [{"role": "assistant", "content": "2 + 2 = 4."}]
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    conversational = {"prompt": messages, "completion": "a"}
    assert to_conversational(conversational)["prompt"] == conversational["prompt"]
    assert to_dataset([PAIR], "dpo", chat_template=False)[0] == PAIR


def test_kto_weights_balance_unequal_up_and_down_counts() -> None:
    desirable, undesirable = balanced_weights([True] * 2 + [False] * 6)
    assert desirable * 2 == pytest.approx(undesirable * 6)
    assert balanced_weights([True, False]) == (1.0, 1.0)
