"""The loop's evaluation stage: a version on the objective's held-out prompts (a greedy answer and
`--eval-samples` sampled ones per prompt, computed once and kept in the loop's folder), and a candidate's win
rate against its base judged by the objective's score.
The metrics and the record kept with the version are `llm_feedback_loop.evaluation`'s, as for `llmfl eval`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from llm_feedback_loop.evaluation.judges import JudgeError
from llm_feedback_loop.loop.context import LoopError, LoopRun
from llm_feedback_loop.models.loader import ModelLoadError
from llm_feedback_loop.storage.tables import ModelVersion


def answers_path(run: LoopRun, version: ModelVersion, samples: int = 0) -> Path:
    """Where a version's held-out answers are kept: by its name and a digest of its model files (`made_of`: a
    database made anew reuses a loop's names, and a round trained again writes its model to the same folder,
    so `loop-r1-dpo` may be another model), the answer length, and for sampled ones their number,
    temperature, top-p and seed."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in version.name)
    which = hashlib.sha256(made_of(version.source).encode()).hexdigest()[:10]
    stem = f"{safe}-{which}-{run.settings.eval_max_tokens}tok"
    if samples:
        sampling = run.settings.sampling
        seeded = f"-s{sampling.seed}" if sampling.seed is not None else ""
        stem += f"-{samples}x-t{sampling.temperature:g}-p{sampling.top_p:g}{seeded}"
    return run.settings.folder / "answers" / f"{stem}.json"


def made_of(source: str) -> str:
    """What a model source is made of, as far as the answers go: the source, and for a local folder or file
    the name, size and modification time of each of its files (the same files: the same model, whichever
    database registered it)."""
    path = Path(source)
    try:
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
        stamps = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    except OSError:  # not readable here: the source alone
        stamps = []
    return "|".join([source, *stamps])


def keep(path: Path, answers: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(answers, ensure_ascii=False, indent=1), encoding="utf-8")
    partial.replace(path)  # never a half-written file


def held_out_answers(run: LoopRun, version: ModelVersion) -> tuple[list[str], list[list[str]] | None]:
    """The version's greedy answers to the held-out prompts and its `eval_samples` sampled answers to each
    (None when the loop samples none); computed once (one load of the model), kept in the loop's folder."""
    from llm_feedback_loop.evaluation.answers import answer_and_sample

    settings = run.settings
    samples = settings.eval_samples
    greedy_path, sampled_path = answers_path(run, version), answers_path(run, version, samples)
    greedy = json.loads(greedy_path.read_text(encoding="utf-8")) if greedy_path.is_file() else None
    sampled = json.loads(sampled_path.read_text(encoding="utf-8")) if samples and sampled_path.is_file() else None
    need_samples = samples > 0 and sampled is None
    if greedy is None or need_samples:
        prompts = settings.objective.eval_prompts
        also = f" and {samples} sampled answers to each" if need_samples else ""
        run.say(f"  answering {len(prompts)} held-out prompts with {version.name}{also}")
        sampling = settings.sampling
        try:
            found, drawn = answer_and_sample(
                version.source,
                prompts,
                settings.eval_max_tokens,
                samples if need_samples else 0,
                greedy=greedy is None,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                seed=sampling.seed or 0,
                pack_linear=run.app_settings.model_packed_linear,
            )
        except ModelLoadError as error:
            raise LoopError(f"cannot evaluate {version.name}: {error}") from None
        if greedy is None:
            greedy = found
            keep(greedy_path, greedy)
        if need_samples:
            sampled = drawn
            keep(sampled_path, sampled)
    return greedy, sampled


def evaluate_version(run: LoopRun, version: ModelVersion, against: ModelVersion | None) -> dict[str, Any]:
    """The objective's metrics of a version (and its win rate against `against`), kept with the version;
    returns the metrics as kept."""
    from llm_feedback_loop.evaluation.objective import objective_evaluation
    from llm_feedback_loop.evaluation.versions import keep_evaluation

    objective = run.settings.objective
    answers, sampled = held_out_answers(run, version)
    compared, compared_sampled = None, None
    if against is not None:
        against_answers, compared_sampled = held_out_answers(run, against)
        compared = (against.name, against_answers)
    try:
        evaluation = objective_evaluation(
            objective, version.name, objective.eval_prompts, answers, compared, None, sampled, compared_sampled
        )
    except JudgeError as error:
        raise LoopError(str(error)) from None
    except Exception as error:  # the objective's own code
        raise LoopError(f"task {objective.name}'s score failed: {type(error).__name__}: {error}") from None
    run.session(lambda s: keep_evaluation(s, version.id, evaluation))
    return evaluation.kept_metrics


def metrics_of(run: LoopRun, version: ModelVersion) -> dict[str, Any]:
    """The version's latest metrics on the objective, evaluating it first if it has none."""
    from llm_feedback_loop.evaluation.versions import latest_evaluation

    found = latest_evaluation(version, run.settings.data_path)
    if found is not None and answers_path(run, version).is_file():
        return found["metrics"]
    return evaluate_version(run, version, None)
