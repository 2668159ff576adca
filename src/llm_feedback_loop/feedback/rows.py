"""Validated payloads → the column values the writer inserts: pure functions, no database.

Values are keyed by column name, not attribute name (`metadata`, not `extra`): the writer inserts with Core.
Payloads that name logged answers by `generation_id` are filled in from them by `links.py`.
"""

from __future__ import annotations

from typing import Any

from llm_feedback_loop.feedback import payloads
from llm_feedback_loop.storage.prompts import prompt_hash, prompt_messages_from_text
from llm_feedback_loop.storage.tables import FeedbackRowMixin, utc_now


def common_values(
    prompt_messages: list[dict[str, str]], annotator: str | None, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    now = utc_now()
    return {
        "created_at": now,
        "updated_at": now,
        "annotator": annotator,
        "metadata": metadata,  # column names, not attribute names: the writer inserts with Core
        "prompt": prompt_messages[-1]["content"],
        "prompt_messages": prompt_messages,
        "prompt_hash": prompt_hash(prompt_messages),
    }


def legacy_rating_values(payload: payloads.LegacyRatingIn) -> dict[str, Any]:
    return common_values(prompt_messages_from_text(payload.prompt), payload.annotator, payload.metadata) | {
        "response": payload.response,
        "rating": payload.rating,
        "model": payload.model,
        "comment": payload.comment,
    }


def legacy_comparison_values(payload: payloads.LegacyComparisonIn) -> dict[str, Any]:
    responses = [{"id": None if r.id is None else str(r.id), "text": r.text} for r in payload.responses]
    return common_values(prompt_messages_from_text(payload.prompt), payload.annotator, payload.metadata) | {
        "responses": responses,
        "ranking": payload.ranking,
        "best_index": payload.bestIndex,
        "comment": payload.comment,
        "model": payload.model,
    }


def generation_values(payload: payloads.GenerationCreate) -> dict[str, Any]:
    return common_values(payload.prompt_messages(), payload.annotator, payload.metadata) | {
        "response": payload.response,
        "model": payload.model,
        "model_version": payload.model_version,
        "parameters": payload.parameters,
    }


def row_from_values(table: type[FeedbackRowMixin], row_id: int, values: dict[str, Any]) -> FeedbackRowMixin:
    """The ORM object of a row just inserted from column `values` (the `metadata` column is `extra`)."""
    attributes = {("extra" if key == "metadata" else key): value for key, value in values.items()}
    return table(id=row_id, **attributes)
