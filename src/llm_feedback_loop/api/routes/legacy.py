"""The original project's endpoints, payload-compatible: `/feedback` and `/rlhf-feedback`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from llm_feedback_loop.api import schemas
from llm_feedback_loop.api.deps import Annotator, StateDep, require_export, require_read
from llm_feedback_loop.api.routes.feedback import check_answer_count
from llm_feedback_loop.api.security import as_user
from llm_feedback_loop.feedback.repository import stream_rows
from llm_feedback_loop.feedback.rows import legacy_comparison_values, legacy_rating_values
from llm_feedback_loop.storage.tables import Comparison, Rating
from llm_feedback_loop.training_data.legacy import legacy_dpo_lines, legacy_sft_line

router = APIRouter(tags=["original API"])
NDJSON = "application/x-ndjson"


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def _json_array(items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """A JSON array written one element at a time, so a large table never sits in memory."""
    yield b"["
    first = True
    async for item in items:
        yield (b"" if first else b",") + json.dumps(item, ensure_ascii=False).encode("utf-8")
        first = False
    yield b"]"


@router.post("/feedback", status_code=201, response_model=schemas.Created)
async def create_feedback(payload: schemas.LegacyRatingIn, state: StateDep, user: Annotator) -> schemas.Created:
    """Store a thumbs up/down on an answer."""
    row_id = await state.writer.insert(Rating, legacy_rating_values(as_user(payload, user)))
    return schemas.Created(message="Feedback saved", id=row_id)


@router.get("/feedback", dependencies=[Depends(require_read)])
async def list_feedback(state: StateDep) -> StreamingResponse:
    """All ratings, newest first."""

    async def items() -> AsyncIterator[dict[str, Any]]:
        async for row in stream_rows(state.engine, Rating, newest_first=True):
            yield {
                "id": row.id,
                "prompt": row.prompt,
                "response": row.response,
                "rating": row.rating,
                "model": row.model,
                "createdAt": _iso(row.created_at),
                "updatedAt": _iso(row.updated_at),
            }

    return StreamingResponse(_json_array(items()), media_type="application/json")


@router.get("/feedback/export", dependencies=[Depends(require_export)])
async def export_feedback(state: StateDep) -> StreamingResponse:
    """Upvoted ratings as SFT JSONL lines `{"prompt", "completion"}`, oldest first."""

    async def lines() -> AsyncIterator[bytes]:
        async for row in stream_rows(state.engine, Rating, extra_conditions=[Rating.rating == "up"]):
            yield legacy_sft_line(row.prompt, row.response).encode("utf-8") + b"\n"

    return StreamingResponse(lines(), media_type=NDJSON)


@router.post("/rlhf-feedback", status_code=201, response_model=schemas.Created)
async def create_rlhf_feedback(
    payload: schemas.LegacyComparisonIn, state: StateDep, user: Annotator
) -> schemas.Created:
    """Store a comparison of several answers: a full ranking (best first) or a best pick (at most
    MAX_ANSWERS_PER_COMPARISON answers)."""
    check_answer_count(state, len(payload.responses), "responses")
    row_id = await state.writer.insert(Comparison, legacy_comparison_values(as_user(payload, user)))
    return schemas.Created(message="RLHF feedback saved", id=row_id)


@router.get("/rlhf-feedback", dependencies=[Depends(require_read)])
async def list_rlhf_feedback(state: StateDep) -> StreamingResponse:
    """All comparisons, newest first."""

    async def items() -> AsyncIterator[dict[str, Any]]:
        async for row in stream_rows(state.engine, Comparison, newest_first=True):
            yield {
                "id": row.id,
                "prompt": row.prompt,
                "responses": [{"id": r.get("id"), "text": r["text"]} for r in row.responses],
                "ranking": row.ranking,
                "bestIndex": row.best_index,
                "comment": row.comment,
                "createdAt": _iso(row.created_at),
                "updatedAt": _iso(row.updated_at),
            }

    return StreamingResponse(_json_array(items()), media_type="application/json")


@router.get("/rlhf-feedback/export", dependencies=[Depends(require_export)])
async def export_rlhf_feedback(state: StateDep) -> StreamingResponse:
    """Comparisons as DPO JSONL lines `{"prompt", "chosen", "rejected"}`: every ordered pair of each
    ranking, or best vs each other answer when only a best pick was given. Every pair of a comparison the
    API accepts is written; a larger one stored before the cap (or imported) gives its first pairs only."""
    most = state.settings.max_answers_per_comparison
    max_pairs = max(state.settings.max_pairs_per_prompt, most * (most - 1) // 2)

    async def lines() -> AsyncIterator[bytes]:
        async for row in stream_rows(state.engine, Comparison):
            texts = [r["text"] for r in row.responses]
            for line in legacy_dpo_lines(row.prompt, texts, row.ranking, row.best_index, max_pairs):
                yield line.encode("utf-8") + b"\n"

    return StreamingResponse(lines(), media_type=NDJSON)
