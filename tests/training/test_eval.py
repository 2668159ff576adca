"""`llmfl eval` and its metrics: text metrics on fixed strings match known values; a trained version is
evaluated on a held-out split and the result is kept with the version."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from llm_feedback_loop.evaluation.text_metrics import text_scores
from tests.training.conftest import invoke, write_export

FAST = ("--max-steps", "4", "--batch-size", "4", "--learning-rate", "1e-3", "--device", "cpu")


def test_text_metrics_on_fixed_strings() -> None:
    same = text_scores(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert (same.bleu, same.chrf, same.rouge_l, same.mean_words) == (100.0, 100.0, 100.0, 6.0)
    close = text_scores(["the cat is on the mat"], ["the cat sat on the mat"])
    assert close.rouge_l == pytest.approx(100 * 5 / 6, abs=1e-3)  # LCS "the cat on the mat": P = R = 5/6
    assert close.bleu == pytest.approx(37.9918, abs=1e-3)  # sacrebleu's corpus BLEU, known value
    assert close.chrf == pytest.approx(61.9252, abs=1e-3)
    with pytest.raises(ValueError, match="2 answers for 1 references"):
        text_scores(["a", "b"], ["a"])


def test_eval_of_a_trained_version_is_kept_with_it(training_database: str, tmp_path: Path) -> None:
    sft = write_export(tmp_path / "exports", "sft", count=16, test=4)
    assert invoke("train", "sft", "--data", str(sft), "--output-dir", "sft", *FAST)[0] == 0
    code, output = invoke("eval", "2", "--data", str(sft), "--max-new-tokens", "8", "--out", "sft-eval.json")
    assert code == 0, output
    report = json.loads(Path("sft-eval.json").read_text())
    assert report["data"]["rows"] == 4 and report["data"]["kind"] == "sft"  # the held-out split
    assert {"bleu", "chrf", "rouge_l", "mean_words"} <= set(report["metrics"]) and report["metrics"]["examples"]

    dpo = write_export(tmp_path / "exports", "dpo", count=16, test=4)
    code, output = invoke("eval", "2", "--data", str(dpo), "--out", "dpo-eval.json")
    assert code == 0, output  # implicit reward against its parent, the tiny base
    accuracy = json.loads(Path("dpo-eval.json").read_text())["metrics"]["preference_accuracy"]
    assert 0.0 <= accuracy <= 1.0
    with sqlite3.connect(tmp_path / "loop.db") as database:
        (metadata,) = database.execute("SELECT metadata FROM model_versions WHERE id = 2").fetchone()
    kept = json.loads(metadata)["evaluations"]
    assert [e["data"]["kind"] for e in kept] == ["sft", "dpo"]
    assert (
        kept[0]["metrics"]["bleu"] == report["metrics"]["bleu"]
        and kept[1]["metrics"]["preference_accuracy"] == accuracy
    )


def test_eval_explains_bad_input(training_database: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, output = invoke("eval", "1", "--data", str(empty))
    assert code == 1 and "no rows" in output
    kto = write_export(tmp_path / "exports", "kto")
    code, output = invoke("eval", "1", "--data", str(kto))
    assert code == 1 and "sft export" in output
    sft = write_export(tmp_path / "exports", "dpo")
    code, output = invoke("eval", "1", "--data", str(sft))
    assert code == 1 and "--reference" in output  # the base has no parent to compare with


def test_win_rate_against_the_parent_and_automatic_promotion(training_database: str, tmp_path: Path) -> None:
    sft = write_export(tmp_path / "exports", "sft", count=16, test=4)
    pairs = write_export(tmp_path / "exports", "dpo", count=16)
    assert invoke("train", "sft", "--data", str(sft), "--output-dir", "sft", *FAST)[0] == 0  # version 2
    assert invoke("train", "reward", "--data", str(pairs), "--output-dir", "rm", *FAST)[0] == 0  # version 3
    code, output = invoke("eval", "3", "--data", str(pairs), "--out", "rm.json")  # the reward model on pairs
    assert code == 0, output
    scored = json.loads(Path("rm.json").read_text())["metrics"]
    assert (
        0 <= scored["preference_accuracy"] <= 1 and 0 <= scored["brier"] <= 1 and 0 <= scored["calibration_error"] <= 1
    )
    code, output = invoke("models", "promote", "2", "--auto")  # not evaluated yet
    assert code == 3 and "no win rate yet" in " ".join(output.split())

    code, output = invoke("eval", "2", "--data", str(sft), "--judge", "3", "--max-new-tokens", "8", "--out", "w.json")
    assert code == 0, output
    metrics = json.loads(Path("w.json").read_text())["metrics"]
    assert metrics["wins"] + metrics["ties"] + metrics["losses"] == 4 and 0 <= metrics["win_rate"] <= 1
    assert len(metrics["candidate_rewards"]) == len(metrics["parent_rewards"]) == 4
    html = Path("w.html").read_text()
    assert "Win rate against" in html and "<svg" in html and "Reward distributions" in html and "<script" not in html

    code, output = invoke("models", "promote", "2", "--auto", "--min-win-rate", "1.01")
    assert code == 3 and "win rate" in output
    code, output = invoke("models", "promote", "2", "--auto", "--min-win-rate", "0")
    assert code == 0 and "promoted" in output
    with sqlite3.connect(tmp_path / "loop.db") as database:
        active = database.execute("SELECT id FROM model_versions WHERE status = 'active'").fetchall()
    assert active == [(2,)]
    code, output = invoke("models", "promote", "3")
    assert code == 1 and "reward model" in output  # a scorer is never the chat model


def test_the_html_report_escapes_model_text() -> None:
    from llm_feedback_loop.evaluation.report import render_report

    hostile = "<script>alert(1)</script>"
    html = render_report(
        {
            "model": "v<2>",
            "evaluated_at": "now",
            "data": {"path": "t.jsonl", "rows": 1, "kind": "sft"},
            "metrics": {"bleu": 1.0, "examples": [{"prompt": hostile, "answer": hostile, "reference": "r"}]},
        }
    )
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "v&lt;2&gt;" in html


def test_eval_on_a_task_with_a_function_judge(training_database: str, tmp_path: Path) -> None:
    sft = write_export(tmp_path / "exports", "sft", count=16)
    assert invoke("train", "sft", "--data", str(sft), "--output-dir", "sft", *FAST)[0] == 0  # version 2
    code, output = invoke("eval", "2", "--task", "concise", "--limit", "6", "--max-new-tokens", "8", "--out", "t.json")
    assert code == 0, output
    result = json.loads(Path("t.json").read_text())
    assert result["data"] == {"path": "task:concise[:6]", "rows": 6, "kind": "task"}  # apart from the loop's
    metrics = result["metrics"]
    assert {"task_score", "coherence", "correct", "mean_words", "win_rate"} <= set(metrics)
    assert metrics["judge"] == "task:concise" and metrics["wins"] + metrics["ties"] + metrics["losses"] == 6

    code, output = invoke(
        "eval", "2", "--task", "concise", "--limit", "3", "--max-new-tokens", "8", "--out", "f.json",
        "--judge", "fn:tests.loop.scorers:by_length",
    )  # fmt: skip
    assert code == 0, output
    metrics = json.loads(Path("f.json").read_text())["metrics"]
    assert metrics["judge"] == "tests.loop.scorers:by_length" and len(metrics["candidate_rewards"]) == 3
    with sqlite3.connect(tmp_path / "loop.db") as database:
        (metadata,) = database.execute("SELECT metadata FROM model_versions WHERE id = 2").fetchone()
    assert [e["data"]["path"] for e in json.loads(metadata)["evaluations"]] == ["task:concise[:6]", "task:concise[:3]"]

    code, output = invoke("eval", "2")
    assert code == 1 and "--data EXPORT or --task TASK" in output
    code, output = invoke("eval", "2", "--task", "concise", "--judge", "fn:nowhere:thing")
    assert code == 1 and "cannot import" in output
