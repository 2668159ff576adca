"""Parts of a round on fixed inputs: where a version's held-out answers are kept, the simulated annotator's
scores, and which loop a control run may continue."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from llm_feedback_loop.loop.collect import annotator_scorer
from llm_feedback_loop.loop.context import LoopError, Sampling
from llm_feedback_loop.loop.evaluate import answers_path
from llm_feedback_loop.loop.rounds import check_control


def loop_run(folder: Path, sampling: Sampling | None = None, scorer: object = None) -> SimpleNamespace:
    settings = SimpleNamespace(folder=folder, eval_max_tokens=64, sampling=sampling or Sampling(), scorer=scorer)
    return SimpleNamespace(settings=settings)


def version(name: str, source: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, source=source)


def test_held_out_answers_belong_to_the_model_files_not_only_to_the_versions_name(tmp_path: Path) -> None:
    """A database made anew reuses a loop's names, and a round trained again writes to the same folder: the
    answers kept for `loop-r1-dpo` are those of its files as they are now."""
    run = loop_run(tmp_path)
    model = tmp_path / "round-1" / "dpo" / "model"
    model.mkdir(parents=True)
    weights = model / "adapter_model.safetensors"
    weights.write_bytes(b"first")
    first = answers_path(run, version("loop-r1-dpo", str(model)))
    assert first == answers_path(run, version("loop-r1-dpo", str(model)))  # the same files: the same answers
    assert first.parent == tmp_path / "answers" and first.name.startswith("loop-r1-dpo-")
    weights.write_bytes(b"trained again")
    os.utime(weights, ns=(1, 1))
    assert answers_path(run, version("loop-r1-dpo", str(model))) != first
    # a source that is no file here (a hub id, a package's model): by the source alone, so the same in any database
    hub = answers_path(run, version("base", "org/model"))
    assert hub == answers_path(run, version("base", "org/model")) != answers_path(run, version("base", "org/other"))


def test_sampled_answers_are_kept_apart_by_how_they_were_sampled(tmp_path: Path) -> None:
    source = version("v", "org/model")
    paths = {
        answers_path(loop_run(tmp_path, sampling), source, 2)
        for sampling in (Sampling(), Sampling(seed=1), Sampling(seed=2), Sampling(top_p=0.9), Sampling(temperature=1))
    }
    assert len(paths) == 5 and answers_path(loop_run(tmp_path), source) not in paths
    assert answers_path(loop_run(tmp_path), source, 2) != answers_path(loop_run(tmp_path), source, 3)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_an_annotator_score_that_is_no_number_stops_the_loop_with_a_message(tmp_path: Path, value: float) -> None:
    score = annotator_scorer(loop_run(tmp_path, scorer=lambda prompt, answer: value))  # type: ignore[arg-type]
    with pytest.raises(LoopError, match="must be a finite number"):
        score("a prompt", "an answer")


def test_an_annotator_that_fails_stops_the_loop_with_its_error(tmp_path: Path) -> None:
    score = annotator_scorer(loop_run(tmp_path, scorer=lambda prompt, answer: 1 / 0))  # type: ignore[arg-type]
    with pytest.raises(LoopError, match="ZeroDivisionError"):
        score("a prompt", "an answer")


def round_row(number: int, feedback: dict | None) -> SimpleNamespace:
    return SimpleNamespace(round=number, feedback=feedback)


def test_a_control_run_and_a_real_run_do_not_share_a_loop() -> None:
    real = [round_row(0, None), round_row(1, {"since": "t", "prompts": 4})]
    control = [round_row(0, None), round_row(1, {"since": "t", "prompts": 4, "control": "shuffled"})]
    check_control("loop", None, real)  # continuing as it began
    check_control("loop", "shuffled", control)
    check_control("new", "shuffled", [round_row(0, None)])  # only a baseline so far: either may follow
    check_control("loop", "shuffled", [round_row(1, {"since": "t"})])  # nothing collected yet
    with pytest.raises(LoopError, match="a --name of its own"):
        check_control("loop", "shuffled", real)
    with pytest.raises(LoopError, match="is a control run"):
        check_control("loop", None, control)
