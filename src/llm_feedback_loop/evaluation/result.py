"""What an evaluation produced: the model, the data it was evaluated on, its metrics. The same shape is
written as the JSON report, and (without its lists: examples, per-answer rewards) kept with the version."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

DataKind = Literal["sft", "dpo", "task"]


class EvaluationError(ValueError):
    """An evaluation that cannot be made as asked; the message says what was wrong and what to do."""


class JudgeSpecError(EvaluationError):
    """The judge named for a win rate cannot be loaded (the CLI names its `--judge`)."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class EvaluatedData:
    """What a model was evaluated on: an export file's path (or `task:NAME` for an objective's held-out
    prompts), how many rows, and their kind."""

    path: str
    rows: int
    kind: DataKind


@dataclass(frozen=True)
class Evaluation:
    model: str  # the version's name, or the folder or hub id evaluated
    data: EvaluatedData
    metrics: dict[str, Any]
    evaluated_at: str = field(default_factory=now_iso)

    @property
    def kept_metrics(self) -> dict[str, Any]:
        """The metrics without lists (examples, per-answer rewards): what the version's metadata keeps."""
        return {key: value for key, value in self.metrics.items() if not isinstance(value, list)}

    def report(self) -> dict[str, Any]:
        """The whole result, as the JSON report holds it."""
        return {
            "evaluated_at": self.evaluated_at,
            "model": self.model,
            "data": {"path": self.data.path, "rows": self.data.rows, "kind": self.data.kind},
            "metrics": self.metrics,
        }

    def kept(self) -> dict[str, Any]:
        """What a version's metadata (`evaluations`) keeps of it."""
        return self.report() | {"metrics": self.kept_metrics}
