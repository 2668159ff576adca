"""`llmfl loop`: two rounds on the tiny model, with a simulated annotator that works through the real HTTP
API of a real service process; every round is recorded, and a promoted candidate answers the next round."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_feedback_loop.loop.budget import shortfall_budget
from llm_feedback_loop.objectives.concise import TASK
from llm_feedback_loop.settings import get_settings
from llm_feedback_loop.storage.engine import create_engine
from llm_feedback_loop.storage.tables import (
    ApiKey,
    Comparison,
    Generation,
    LoopRound,
    ModelVersion,
    Rating,
    TrainingRun,
)
from tests.training.conftest import invoke

# Training settings of the tests of the loop's mechanics: fast, and no early stopping (`eval_steps: 0`: no
# held-out split), since the tiny model's random answers give nothing that carries to held-out pairs and every
# round would end at the held-out check (tested on its own below).
TRAIN_FOR_MECHANICS = "learning_rate: 1.0e-3\nbatch_size: 4\nmax_length: 128\nsave_steps: 1000\neval_steps: 0\n"


def rows(table: type) -> list:
    async def load() -> list:
        engine = create_engine(get_settings().database_url)
        try:
            async with AsyncSession(engine) as session:
                return list(await session.scalars(select(table).order_by(table.id)))
        finally:
            await engine.dispose()

    return asyncio.run(load())


def test_two_rounds_through_the_service_are_recorded(training_database: str, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN_FOR_MECHANICS + "epochs: 1\n")
    code, output = invoke(
        "loop", "--rounds", "2", "--name", "t", "--prompts-per-round", "6", "--answers", "3", "--max-tokens", "12",
        "--train-config", str(config), "--annotator", "tests.loop.scorers:by_length", "--seed", "1",
        "--min-win-rate", "0", "--max-drop", "100", "--min-gain", "-100",  # promote every candidate
    )  # fmt: skip
    assert code == 0, output
    lines = output.strip().splitlines()
    assert lines[-4] == "task score (concise) after each round:"
    assert [line.split(":")[0] for line in lines[-3:]] == ["round 0", "round 1", "round 2"]
    assert lines[-1].startswith("round 2: task_score ")

    loop_rounds = rows(LoopRound)
    assert [(r.round, r.status) for r in loop_rounds] == [(0, "completed"), (1, "completed"), (2, "completed")]
    versions = {v.id: v for v in rows(ModelVersion)}
    tiny = next(v for v in versions.values() if v.name == "tiny")
    assert loop_rounds[0].base_version_id == tiny.id and loop_rounds[0].candidate_version_id is None
    first, second = loop_rounds[1], loop_rounds[2]
    assert first.base_version_id == tiny.id and first.promoted is True
    assert second.base_version_id == first.candidate_version_id  # the promoted candidate generated round 2
    assert versions[second.candidate_version_id].status == "active"
    assert versions[second.candidate_version_id].parent_id == first.candidate_version_id
    for round_ in (first, second):
        # The budget of 6 × 3 answers: 2 answers to 6 prompts, the 6 left to prompts judged alike, then new ones.
        assert round_.feedback["answers"] == 18 and 6 <= round_.feedback["prompts"] <= 9
        assert round_.feedback["signal_prompts"] >= 1
        assert 0 < round_.feedback["ratings_up"] + round_.feedback["ratings_down"] <= 18  # empty answers: none
        assert round_.feedback["rankings"] > 0
        assert round_.data["dpo"]["rows"] > 0 and Path(round_.data["dpo"]["path"]).is_file()
        # a training prompt whose liked answer is a list also gets it over itself repeated (--repetition-pairs,
        # the default); the tiny model's answers are seldom lists
        sources = round_.data["dpo"]["manifest_counts"]["rows_per_source"]
        assert sources.get("repetition", 0) <= round_.data["dpo"]["manifest_counts"]["prompts_per_split"]["train"]
        manifest = json.loads(Path(round_.data["dpo"]["path"]).with_name("dpo.manifest.json").read_text())
        assert manifest["options"]["repetition_pairs"] is True
        assert len(round_.run_ids) == 1
        assert set(round_.metrics) == {"base", "candidate", "cost"}
        assert round_.metrics["cost"]["cpu_minutes"] > 0 and round_.metrics["cost"]["wall_s"] > 0
        assert {"task_score", "coherence", "correct", "win_rate"} <= set(round_.metrics["candidate"])
        # two sampled answers per held-out prompt beside the greedy one (--eval-samples' default), compared too
        assert round_.metrics["candidate"]["samples_per_prompt"] == 2
        assert {"sampled_task_score", "sampled_coherence", "sampled_gain_low"} <= set(round_.metrics["candidate"])
        assert round_.metrics["candidate"]["reference"] == versions[round_.base_version_id].name
        evaluations = versions[round_.candidate_version_id].extra["evaluations"]
        assert evaluations[-1]["data"]["path"] == "task:concise"

    runs = rows(TrainingRun)
    assert [r.id for r in runs] == first.run_ids + second.run_ids
    assert all(r.status == "completed" and r.method == "dpo" for r in runs)
    assert runs[1].parent_version_id == first.candidate_version_id

    # Feedback came through the API: each rating names the logged answer it judged, and the answers of
    # round 2 were written by round 1's candidate, which the service switched to when it was promoted.
    generations = {g.id: g for g in rows(Generation)}
    ratings = [r for r in rows(Rating) if r.annotator == "simulated:t"]
    assert ratings and all(r.generation_id in generations for r in ratings)
    writers = {generations[r.generation_id].model_version for r in ratings}
    assert writers == {"tiny", versions[first.candidate_version_id].name}

    report = json.loads((tmp_path / "loops" / "t" / "report.json").read_text())
    assert [r["round"] for r in report["rounds"]] == [0, 1, 2]
    html = (tmp_path / "loops" / "t" / "report.html").read_text()
    assert "<svg" in html and "Rounds" in html
    assert "sampled answers' task score" in html
    # kept under the version's name and a digest of its model files, with how they were sampled (--seed 1)
    [kept] = (tmp_path / "loops" / "t" / "answers").glob("tiny-*-12tok-2x-t0.8-p0.95-s1.json")
    sampled = json.loads(kept.read_text())
    assert len(sampled) == len(TASK.eval_prompts) and {len(answers) for answers in sampled} == {2}
    assert "Held-out answers" in html  # the first and the latest version's answers side by side

    # The loop called its own service with a key it gave itself, and revoked that key at the end.
    loop_keys = [key for key in rows(ApiKey) if key.name == "llmfl loop t"]
    assert loop_keys and all(key.revoked_at is not None and key.last_used_at is not None for key in loop_keys)


def test_a_second_run_continues_after_the_completed_rounds(training_database: str, tmp_path: Path) -> None:
    code, output = invoke("loop", "--rounds", "0", "--name", "again")
    assert code == 0, output
    code, output = invoke("loop", "--rounds", "0", "--name", "again")
    assert code == 0, output
    assert "round 0 (the starting version)" not in output  # kept from the first run
    assert len([r for r in rows(LoopRound) if r.loop == "again"]) == 1


def test_a_round_of_online_rl_trains_a_reward_model_then_grpo_with_it(training_database: str, tmp_path: Path) -> None:
    """--train reward,grpo: each round's reward model learns from the feedback so far (its held-out accuracy
    said), the policy is trained by GRPO rewarded by it, and only the policy is a candidate."""
    config = tmp_path / "train.yaml"
    config.write_text(
        "learning_rate: 1.0e-3\nmax_steps: 2\nbatch_size: 4\nmax_length: 128\nsave_steps: 1000\n"
        "num_generations: 2\nmax_completion_length: 8\n"
    )
    code, output = invoke(
        "loop", "--rounds", "2", "--name", "rl", "--prompts-per-round", "6", "--answers", "3", "--max-tokens", "12",
        "--train", "reward,grpo", "--train-config", str(config), "--annotator", "tests.loop.scorers:by_length",
        "--seed", "1", "--min-win-rate", "0", "--max-drop", "100", "--min-gain", "-100",
    )  # fmt: skip
    assert code == 0, output
    assert "held-out pair accuracy" in output
    versions = {v.id: v for v in rows(ModelVersion)}
    candidates = [versions[row.candidate_version_id] for row in rows(LoopRound)[1:]]
    assert [v.method for v in candidates] == ["grpo", "grpo"] and candidates[-1].status == "active"
    reward_models = [v for v in versions.values() if v.method == "reward"]
    assert len(reward_models) == 2 and {v.status for v in reward_models} == {"candidate"}  # never promoted
    grpo_runs = [r for r in rows(TrainingRun) if r.method == "grpo"]
    assert [r.config["reward"] for r in grpo_runs] == [[str(v.id)] for v in reward_models]  # each round's own
    assert rows(LoopRound)[2].status == "completed"


def test_a_shuffled_control_round_judges_the_same_scores_in_another_order(
    training_database: str, tmp_path: Path
) -> None:
    """--control shuffled: each prompt's scores are shuffled among its answers before the annotator judges
    them, so the round has as many ups, downs and pairs as a real one, but they say nothing."""
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN_FOR_MECHANICS + "max_steps: 1\n")
    code, output = invoke(
        "loop", "--rounds", "1", "--name", "control", "--prompts-per-round", "6", "--answers", "3",
        "--max-tokens", "12", "--train-config", str(config), "--annotator", "tests.loop.scorers:by_length",
        "--seed", "1", "--control", "shuffled",
        "--min-win-rate", "0", "--max-drop", "100", "--min-gain", "-100",  # the rule would promote any candidate
    )  # fmt: skip
    assert code == 0, output
    assert "control run: the annotator's judgements are shuffled" in output
    judged = [c.extra for c in rows(Comparison)]
    assert judged and all(meta["control"] == "shuffled" for meta in judged)
    assert all(sorted(meta["judged_scores"]) == sorted(meta["scores"]) for meta in judged)
    assert any(meta["judged_scores"] != meta["scores"] for meta in judged)  # shuffled, not left as they were
    round_1 = rows(LoopRound)[1]
    assert round_1.feedback["control"] == "shuffled"
    # its candidate is never made active: the service keeps answering with the version it started from
    assert round_1.candidate_version_id is not None and round_1.promoted is False
    assert "control run's candidate is never made active" in " ".join(output.split())
    active = [v for v in rows(ModelVersion) if v.status == "active"]
    assert [v.id for v in active] == [round_1.base_version_id]
    # a real run does not continue a control run's rounds (nor the reverse)
    code, output = invoke("loop", "--rounds", "2", "--name", "control", "--max-tokens", "12")
    assert code == 1 and "is a control run" in output, output
    code, output = invoke("loop", "--control", "shuffled", "--annotator", "people", "--service-url", "http://x")
    assert code == 1 and "people's are never altered" in output


def test_bad_options_are_explained(training_database: str) -> None:
    code, output = invoke("loop", "--train", "ppo")
    assert code == 1 and "--train takes sft, dpo, kto" in output
    code, output = invoke("loop", "--train", "grpo")
    assert code == 1 and "--train reward,grpo" in output
    code, output = invoke("loop", "--train", "dpo,reward")
    assert code == 1 and "not a chat model" in output
    code, output = invoke("loop", "--task", "nowhere:TASK")
    assert code == 1 and "cannot import" in output
    code, output = invoke("loop", "--annotator", "people")
    assert code == 1 and "--service-url" in output
    code, output = invoke("loop", "--service-url", "http://127.0.0.1:9")
    assert code == 1 and "LLMFL_API_KEY" in output  # a running service needs a key, refused before any work


@pytest.mark.parametrize(
    "option",
    [
        ["--rounds", "-1"],
        ["--max-tokens", "5000"],
        ["--min-win-rate", "55"],
        ["--max-drop", "-1"],
        ["--min-gain", "101"],
        ["--wait-minutes", "0"],
        ["--seed", "-1"],
    ],
)
def test_numbers_out_of_range_are_refused(training_database: str, option: list[str]) -> None:
    code, output = invoke("loop", *option)
    assert code == 2 and "Invalid value" in output, output


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("learning_rate: [1\n", "not valid YAML"),
        ("- a list\n", "must hold a mapping"),
        ("learning_rate: -1\n", "learning_rate"),
        ("no_such_setting: 1\n", "no_such_setting"),
    ],
)
def test_a_bad_train_config_is_refused_before_round_0(
    training_database: str, tmp_path: Path, text: str, says: str
) -> None:
    """Found out before any work, not in round 1 after the feedback was collected (and not as a stack trace)."""
    config = tmp_path / "train.yaml"
    config.write_text(text)
    code, output = invoke("loop", "--rounds", "1", "--name", "badconfig", "--train-config", str(config))
    assert code == 1 and "--train-config" in output and says in output, output
    assert "Traceback" not in output
    assert not [r for r in rows(LoopRound) if r.loop == "badconfig"]


def test_a_task_with_few_held_out_prompts_is_told_its_intervals_are_rough(
    training_database: str, tmp_path: Path
) -> None:
    task = tmp_path / "small_task.py"
    task.write_text(
        "from llm_feedback_loop.objectives.base import Objective\n"
        "TASK = Objective('small', 'short answers', ['Say a', 'Say b'], ['Say c', 'Say d', 'Say e'],\n"
        "                 lambda prompt, answer: float(len(answer) < 20))\n",
        encoding="utf-8",
    )
    code, output = invoke("loop", "--rounds", "0", "--name", "small", "--task", f"{task}:TASK", "--max-tokens", "4")
    assert code == 0, output
    assert "has 3 held-out prompts; with fewer than 20" in " ".join(output.split())


def test_a_round_whose_answers_are_all_judged_alike_trains_nothing(training_database: str) -> None:
    code, output = invoke(
        "loop", "--rounds", "1", "--name", "flat", "--prompts-per-round", "3", "--answers", "2", "--max-tokens", "8",
        "--annotator", "tests.loop.scorers:alike",
    )  # fmt: skip
    assert code == 0, output
    assert "round 1: " in output and "every answer was judged alike" in output
    last = [r for r in rows(LoopRound) if r.loop == "flat"][-1]
    assert last.status == "completed" and last.candidate_version_id is None and not rows(TrainingRun)


def test_a_round_with_too_little_signal_keeps_its_feedback_for_the_next(training_database: str, tmp_path: Path) -> None:
    """--min-signal above what a round finds: it collects a second budget, trains nothing and says why; the
    next round's export starts at the first round's feedback."""
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN_FOR_MECHANICS + "max_steps: 1\n")
    options = ["loop", "--name", "thin", "--prompts-per-round", "4", "--answers", "2", "--max-tokens", "8"]
    options += ["--annotator", "tests.loop.scorers:by_length", "--train-config", str(config), "--min-gain", "-100"]
    code, output = invoke(*options, "--rounds", "1", "--min-signal", "50")
    assert code == 0, output
    assert "too little signal (fewer than 50 prompts): collecting more" in output
    assert "too little signal: the feedback gives dpo rows for" in " ".join(output.split())
    first = [r for r in rows(LoopRound) if r.loop == "thin"][-1]
    assert first.candidate_version_id is None and first.feedback["budgets"] == 2 and first.feedback["answers"] == 16
    assert not rows(TrainingRun)

    code, output = invoke(*options, "--rounds", "2", "--min-signal", "1")
    assert code == 0, output
    second = [r for r in rows(LoopRound) if r.loop == "thin"][-1]
    manifest = json.loads(Path(second.data["dpo"]["path"]).with_name("dpo.manifest.json").read_text())
    assert manifest["filters"]["since"] == first.feedback["since"]  # round 1's feedback, kept for round 2
    assert second.candidate_version_id is not None


def test_people_judge_a_round_on_the_queue(
    training_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--annotator people: the round's answers wait on the queue of a running service; the loop goes on once
    a person (here a thread using the same API as the /queue page, with an annotator's key) has ranked them
    all. The loop authenticates with the admin key in LLMFL_API_KEY."""
    import threading

    import httpx

    config = tmp_path / "train.yaml"
    config.write_text(TRAIN_FOR_MECHANICS + "max_steps: 1\n")

    from tests.support.accounts import bearer, issue_keys
    from tests.support.servers import running_llmfl

    keys = issue_keys(training_database, {"admin": "root", "annotator": "ana"})
    monkeypatch.setenv("LLMFL_API_KEY", keys["admin"])
    get_settings.cache_clear()
    env = {"DATABASE_URL": training_database, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    with running_llmfl(["serve"], tmp_path, env=env) as url:
        done = threading.Event()

        def person() -> None:
            with httpx.Client(base_url=url, timeout=60, headers=bearer(keys["annotator"])) as client:
                while not done.is_set():
                    params = {"annotator": "ana", "batch": "people-round-1"}
                    task = client.get("/v1/tasks/next", params=params).json()["task"]
                    if task is None:
                        done.wait(0.2)
                        continue
                    answers = [{"generation_id": a["generation_id"]} for a in task["answers"]]
                    answers[0]["rating"] = "up"
                    answers[-1]["rating"] = "down"
                    body = {
                        "messages": task["messages"],
                        "annotator": "ana",
                        "task_id": task["id"],
                        "answers": answers,
                        "ranking": list(range(len(answers))),
                    }
                    assert client.post("/v1/annotations", json=body).status_code == 201

        worker = threading.Thread(target=person, daemon=True)
        worker.start()
        try:
            code, output = invoke(
                "loop", "--rounds", "1", "--name", "people", "--annotator", "people", "--service-url", url,
                "--prompts-per-round", "3", "--answers", "2", "--max-tokens", "8", "--wait-minutes", "2",
                "--train-config", str(config),
            )  # fmt: skip
        finally:
            done.set()
            worker.join(timeout=10)
            get_settings.cache_clear()
    assert code == 0, output
    assert "wait on the /queue page" in output
    last = [r for r in rows(LoopRound) if r.loop == "people"][-1]
    assert last.batch == "people-round-1" and last.feedback["annotated"] == last.feedback["tasks"] > 0
    assert last.candidate_version_id is not None and last.data["dpo"]["rows"] > 0


def test_the_demo_on_the_tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("DATABASE_URL", "BASE_MODEL", "CHECKPOINT_DIR"):  # not the demo's: it builds its own Settings
        monkeypatch.setenv(name, "unset")
    try:
        code, output = invoke("demo", "--model", "tiny", "--rounds", "1", "--prompts-per-round", "6")
    finally:
        get_settings.cache_clear()
    assert {os.environ[name] for name in ("DATABASE_URL", "BASE_MODEL", "CHECKPOINT_DIR")} == {"unset"}
    assert code in (0, 4), output  # 4: coherence fell (a random model has none to keep)
    lines = output.strip().splitlines()
    assert lines[-3] == "task score (concise) after each round:"
    assert lines[-2].startswith("round 0: task_score") and lines[-1].startswith("round 1: task_score")
    assert lines[-4].startswith("coherence of the active version's answers")
    assert (tmp_path / "demo" / "report.html").is_file() and (tmp_path / "demo" / "demo.db").is_file()

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text("mine")
    code, output = invoke("demo", "--model", "tiny", "--folder", "elsewhere")
    assert code == 1 and "not made by `llmfl demo`" in output
    assert (tmp_path / "elsewhere" / "notes.txt").read_text() == "mine"


def test_a_failed_round_runs_again_on_the_feedback_it_collected(training_database: str, tmp_path: Path) -> None:
    bad, good = tmp_path / "bad.yaml", tmp_path / "good.yaml"
    # settings `llmfl train` takes, but its training fails on: LoRA on layers the model does not have
    bad.write_text(TRAIN_FOR_MECHANICS + "lora: true\nlora_target_modules: [no_such_layer]\n")
    good.write_text(TRAIN_FOR_MECHANICS + "epochs: 1\n")
    options = ["loop", "--rounds", "1", "--name", "retry", "--prompts-per-round", "4", "--answers", "2"]
    options += ["--max-tokens", "8", "--annotator", "tests.loop.scorers:by_length"]
    code, output = invoke(*options, "--train-config", str(bad))
    assert code == 1 and "training dpo failed" in " ".join(output.split())
    failed = [r for r in rows(LoopRound) if r.loop == "retry"][-1]
    assert failed.status == "failed" and failed.feedback["prompts"] == 4 and failed.data["dpo"]["rows"] > 0
    ratings = len(rows(Rating))

    code, output = invoke(*options, "--train-config", str(good))
    assert code == 0, output
    assert "using the feedback collected by the earlier attempt" in output
    assert len(rows(Rating)) == ratings  # nothing collected twice
    again = [r for r in rows(LoopRound) if r.loop == "retry"][-1]
    assert again.status == "completed" and again.data == failed.data and again.candidate_version_id


def test_a_round_a_little_short_of_signal_collects_only_what_it_lacks(training_database: str, tmp_path: Path) -> None:
    """20 prompts, 2 answers each (40 answers), want signal on 10 of them; the annotator tells answers apart on
    9 of the first 20 prompts (by a hash of each prompt), so the second collection is sized to the one missing
    prompt (`shortfall_budget`: 7 answers, not 40)."""
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN_FOR_MECHANICS + "max_steps: 1\n")
    code, output = invoke(
        "loop", "--rounds", "1", "--name", "short", "--prompts-per-round", "20", "--answers", "2",
        "--max-tokens", "8", "--train-config", str(config), "--annotator", "tests.loop.scorers:some_prompts",
        "--seed", "1", "--min-gain", "-100",
    )  # fmt: skip
    assert code == 0, output
    found = re.search(r"answered 20 prompts \(40 answers\); the annotator judged the answers of (\d+) prompts", output)
    assert found is not None, output
    sized = shortfall_budget(40, 40, int(found.group(1)), 10)
    assert sized < 40 and f"collecting more (up to {sized} answers)" in output
    first = [r for r in rows(LoopRound) if r.loop == "short"][-1]
    assert first.feedback["budgets"] == 2 and first.feedback["answers"] == 40 + 2 * (sized // 2)


def test_a_candidate_no_better_than_chance_on_its_held_out_pairs_is_not_evaluated(
    training_database: str, tmp_path: Path
) -> None:
    """Early stopping's held-out pairs (the recipe's share of the round's prompts, held out exactly): a run that
    diverges never lowers their loss, keeps its weights before training, and the round ends there (a candidate
    that ranks them no better than chance likewise: tests/loop/test_held_out.py). The learning rate overflows the
    weights, so every loss after the start is not finite, on any CPU: a merely large one (1e3) moved the weights
    at random, and on some machines its first step happened to lower the held-out loss."""
    config = tmp_path / "train.yaml"
    config.write_text("learning_rate: 3.0e+38\nmax_steps: 2\nbatch_size: 4\nmax_length: 128\neval_steps: 1\n")
    code, output = invoke(
        "loop", "--rounds", "1", "--name", "chance", "--prompts-per-round", "10", "--answers", "3",
        "--max-tokens", "8", "--train-config", str(config), "--annotator", "tests.loop.scorers:by_length",
        "--seed", "1", "--min-signal", "1",
    )  # fmt: skip
    assert code == 0, output
    said = " ".join(output.split())
    assert "held out for early stopping" in said and "kept the weights of step 0" in said
    assert "never lowered its" in said and "the feedback is kept for the next round" in said
    last = [r for r in rows(LoopRound) if r.loop == "chance"][-1]
    assert last.status == "completed" and last.candidate_version_id is None
    assert "held-out pairs' loss" in last.decision[0]
    manifest = json.loads(Path(last.data["dpo"]["path"]).with_name("dpo.manifest.json").read_text())
    prompts = manifest["counts"]["prompts_per_split"]
    assert prompts["test"] == round(0.2 * (prompts["train"] + prompts["test"])) >= 1  # held out exactly
    (run,) = [r for r in rows(TrainingRun) if r.output_dir == str(Path(last.data["dpo"]["path"]).parents[1] / "dpo")]
    assert run.metrics["best_step"] == 0 and run.metrics["eval_losses"][0][0] == 0
