"""Stored feedback rows → what the `/v1` API returns, and the logged answers a signed-in user may name.

Building the rows from payloads is the feedback store's (`feedback/rows.py`, `feedback/links.py`).
"""

from __future__ import annotations

from typing import Any

from llm_feedback_loop.auth.accounts import Principal
from llm_feedback_loop.auth.roles import Permission
from llm_feedback_loop.feedback.links import EVERY_ANSWER, AnswerAccess
from llm_feedback_loop.storage.tables import Comparison, Correction, FeedbackRowMixin, Rating


def answer_access(user: Principal, allowed: frozenset[int] = frozenset()) -> AnswerAccess:
    """Readers may name any logged answer; an annotator only those logged for them, and the `allowed` answers
    of the task they judge."""
    if user.user_id is None or user.may(Permission.read):
        return EVERY_ANSWER
    return AnswerAccess(annotator=user.name, allowed=allowed)


def public_common(row: FeedbackRowMixin) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "annotator": row.annotator,
        "metadata": row.extra,
        "prompt": row.prompt,
        "messages": row.prompt_messages,
    }


def to_public(row: FeedbackRowMixin) -> dict[str, Any]:
    """A stored row as the /v1 API returns it."""
    if isinstance(row, Rating):
        fields = ("response", "rating", "model", "comment", "generation_id")
        kind = "rating"
    elif isinstance(row, Comparison):
        fields = ("responses", "ranking", "best_index", "model", "comment")
        kind = "comparison"
    elif isinstance(row, Correction):
        fields = ("original_response", "corrected_response", "model", "comment", "generation_id")
        kind = "correction"
    else:
        fields = ("response", "model", "model_version", "parameters")
        kind = "generation"
    return public_common(row) | {"kind": kind} | {name: getattr(row, name) for name in fields}
