"""Whether a candidate should replace the active version: a rule over its evaluations.

The rule: its latest win rate against its parent (`llmfl eval --judge`) is at least `min_win_rate`, and no
metric both were evaluated on with the same data (BLEU, chrF, ROUGE-L on 0–100; preference accuracy as a
percentage; a task's score and coherence as percentages) is more than `max_drop` points below the parent's;
and where the evaluation measured the task score's gain over the parent (`llmfl eval --task`, the loop), the
lower end of the gain's 95% interval (bootstrap over prompts) is above zero: of the greedy answers' gain and,
where the loop sampled answers too, of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llm_feedback_loop.storage.tables import ModelVersion

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

# metric → scale to points
COMPARED = {
    "bleu": 1.0,
    "chrf": 1.0,
    "rouge_l": 1.0,
    "preference_accuracy": 100.0,
    "task_score": 100.0,
    "coherence": 100.0,
    "sampled_task_score": 100.0,
    "sampled_coherence": 100.0,
}
GAINS = ("gain", "sampled_gain")  # a measured gain (greedy answers, sampled ones) whose interval must be above zero


@dataclass
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def latest_by_data(metadata: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The latest metrics of each evaluation data set (path) of a version."""
    found: dict[str, dict[str, Any]] = {}
    for evaluation in (metadata or {}).get("evaluations", []):
        found[evaluation["data"]["path"]] = {**found.get(evaluation["data"]["path"], {}), **evaluation["metrics"]}
    return found


def decide(
    candidate: dict[str, Any] | None,
    parent: dict[str, Any] | None,
    min_win_rate: float,
    max_drop: float,
    also_compared: dict[str, float] | None = None,
    min_gain: float = 0.0,
) -> Decision:
    """Apply the rule to the metadata of a candidate and of its parent (`also_compared`: more metrics that
    must not regress, with their scale to points; `min_gain`: points the lower end of a measured gain's
    interval must be above)."""
    compared = COMPARED | (also_compared or {})
    ours, theirs = latest_by_data(candidate), latest_by_data(parent)
    win_rates = [metrics["win_rate"] for metrics in ours.values() if "win_rate" in metrics]
    if not win_rates:
        return Decision(False, ["no win rate yet: llmfl eval VERSION --data SFT_EXPORT --judge REWARD_MODEL"])
    reasons = []
    if win_rates[-1] < min_win_rate:
        reasons.append(f"win rate {win_rates[-1]:.3f} < {min_win_rate}")
    for path, metrics in ours.items():
        for gain in GAINS:
            if f"{gain}_low" in metrics and 100 * metrics[f"{gain}_low"] <= min_gain:
                what = "task score's gain" if gain == "gain" else "sampled answers' task score gain"
                reasons.append(
                    f"the {what} on {path} ({100 * metrics.get(gain, 0):+.1f} points) is not shown: its 95% interval "
                    f"[{100 * metrics[f'{gain}_low']:+.1f}, {100 * metrics.get(f'{gain}_high', 0):+.1f}] is not "
                    f"above {min_gain:+g}"
                )
        for name, scale in compared.items():
            if name in metrics and name in theirs.get(path, {}):
                drop = points_dropped(theirs[path][name], metrics[name], scale)
                if drop > max_drop:
                    reasons.append(f"{name} on {path} dropped {drop:.2f} points (more than {max_drop})")
    return Decision(not reasons, reasons)


def points_dropped(before: float, after: float, scale: float = 100.0) -> float:
    """How many points a metric fell, rounded to a millionth of a point: metrics are kept rounded, and 6 of
    120 answers lost is 5 points whether the difference of the rounded shares comes out as 4.999999999999993
    (0.9167 - 0.8667) or 5.000000000000004 (0.9333 - 0.8833)."""
    return round((before - after) * scale, 6)


async def promote_version(
    session: AsyncSession,
    ref: str | int,
    *,
    auto: bool,
    min_win_rate: float,
    max_drop: float,
    also_compared: dict[str, float] | None = None,
    min_gain: float = 0.0,
) -> tuple[ModelVersion, Decision]:
    """Make a candidate the active version; with `auto`, only if `decide` says so. Returns the version and
    the decision (whether or not it was applied). Raises RegistryError for an unknown version."""
    from llm_feedback_loop.models.registry import RegistryError, activate_version, find_version

    version = await find_version(session, ref)
    if version is None:
        raise RegistryError(f"no model version {ref!r}; `llmfl models list` shows them")
    parent = await session.get(ModelVersion, version.parent_id) if version.parent_id else None
    decision = decide(version.extra, parent.extra if parent else None, min_win_rate, max_drop, also_compared, min_gain)
    if decision.promote or not auto:
        await activate_version(session, version.id)
    return version, decision
