"""Row filters shared by the list endpoints and the exports."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select

from llm_feedback_loop.storage.tables import FeedbackRowMixin, Task


@dataclass(frozen=True, slots=True)
class FeedbackFilter:
    since: datetime | None = None
    until: datetime | None = None
    annotator: str | None = None
    model: str | None = None

    def apply(self, statement: Select[Any], table: type[FeedbackRowMixin] | type[Task]) -> Select[Any]:
        if self.since is not None:
            statement = statement.where(table.created_at >= self.since)
        if self.until is not None:
            statement = statement.where(table.created_at < self.until)
        if self.annotator is not None:
            statement = statement.where(table.annotator == self.annotator)
        if self.model is not None:
            statement = statement.where(table.model == self.model)  # type: ignore[attr-defined]
        return statement

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}
