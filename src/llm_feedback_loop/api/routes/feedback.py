"""`/v1` feedback: create, list (paginated, filtered), get and delete ratings, comparisons,
corrections and generations.

Each collection's list, get and delete routes are registered by name (`add_collection_routes`), not matched
by a `/v1/{collection}` pattern: a path under /v1 that is no collection is a 404 like any unknown path, and
no other router has to come first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from llm_feedback_loop.api import schemas
from llm_feedback_loop.api.deps import Admin, Annotator, FeedbackReader, SessionDep, StateDep
from llm_feedback_loop.api.feedback_rows import answer_access, to_public
from llm_feedback_loop.api.security import as_user
from llm_feedback_loop.api.state import ServiceState
from llm_feedback_loop.auth.accounts import Principal
from llm_feedback_loop.auth.roles import Permission
from llm_feedback_loop.feedback import repository, validation
from llm_feedback_loop.feedback.filters import FeedbackFilter
from llm_feedback_loop.feedback.links import comparison_values, correction_values, rating_values
from llm_feedback_loop.feedback.rows import generation_values, row_from_values
from llm_feedback_loop.storage.json_values import INT_MAX
from llm_feedback_loop.storage.tables import Comparison, Correction, FeedbackRowMixin, Generation, Rating

router = APIRouter(prefix="/v1", tags=["feedback"])

TABLES: dict[str, type[FeedbackRowMixin]] = {
    "ratings": Rating,
    "comparisons": Comparison,
    "corrections": Correction,
    "generations": Generation,
}
KIND_TABLES: dict[str, type[FeedbackRowMixin]] = {"rating": Rating, "comparison": Comparison, "correction": Correction}


def feedback_filter(
    since: Annotated[datetime | None, Query(description="Only rows created at or after this time (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Only rows created before this time (ISO 8601).")] = None,
    annotator: Annotated[str | None, Query(description="Only rows by this annotator.")] = None,
    model: Annotated[str | None, Query(description="Only rows about answers of this model.")] = None,
) -> FeedbackFilter:
    since, until = in_utc(since, "since"), in_utc(until, "until")
    if since and until and since >= until:
        raise HTTPException(status_code=422, detail="since must be earlier than until")
    return FeedbackFilter(since=since, until=until, annotator=annotator, model=model)


def in_utc(value: datetime | None, field: str) -> datetime | None:
    """The time in UTC (what the database compares); a time at the edge of the calendar whose offset takes it
    past year 1 or 9999 is a 422, not an overflow inside the database driver."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        raise HTTPException(
            status_code=422,
            detail=f"{field}: {value.isoformat()} is outside the dates that can be stored once converted to UTC "
            "(years 1 to 9999)",
        ) from None


MAX_OFFSET = 10_000  # deeper pages cost a scan of every row before them: narrow the filters instead
FilterDep = Annotated[FeedbackFilter, Depends(feedback_filter)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]
Offset = Annotated[
    int,
    Query(
        ge=0,
        le=MAX_OFFSET,
        description=f"Rows to skip, at most {MAX_OFFSET}; for rows further back, narrow since/until.",
    ),
]
RowIdPath = Annotated[int, Path(ge=1, le=INT_MAX, description="The row's id.")]


@router.post("/ratings", status_code=201, response_model=schemas.RatingPublic)
async def create_rating(
    payload: schemas.RatingCreate, state: StateDep, session: SessionDep, user: Annotator
) -> dict[str, Any]:
    """Store a thumbs up/down on an answer (by text, or by the generation_id of a logged answer)."""
    payload = as_user(payload, user)
    return await _create(state, Rating, await rating_values(session, payload, answer_access(user)))


@router.post("/comparisons", status_code=201, response_model=schemas.ComparisonPublic)
async def create_comparison(
    payload: schemas.ComparisonCreate, state: StateDep, session: SessionDep, user: Annotator
) -> dict[str, Any]:
    """Store a comparison: answers ranked best first, or a best pick (at most MAX_ANSWERS_PER_COMPARISON)."""
    check_answer_count(state, len(payload.responses), "responses")
    payload = as_user(payload, user)
    return await _create(state, Comparison, await comparison_values(session, payload, answer_access(user)))


@router.post("/corrections", status_code=201, response_model=schemas.CorrectionPublic)
async def create_correction(
    payload: schemas.CorrectionCreate, state: StateDep, session: SessionDep, user: Annotator
) -> dict[str, Any]:
    """Store an annotator's better answer in place of a model's answer."""
    payload = as_user(payload, user)
    return await _create(state, Correction, await correction_values(session, payload, answer_access(user)))


@router.post("/generations", status_code=201, response_model=schemas.GenerationPublic)
async def create_generation(payload: schemas.GenerationCreate, state: StateDep, user: Annotator) -> dict[str, Any]:
    """Log an answer a model produced (the chat endpoints do this for their own answers)."""
    payload = as_user(payload, user)
    return await _create(state, Generation, generation_values(payload))


def check_answer_count(state: ServiceState, count: int, field: str) -> None:
    """422 for more answers than MAX_ANSWERS_PER_COMPARISON (a comparison's pairs grow with its square)."""
    try:
        validation.check_answer_count(count, state.settings.max_answers_per_comparison, field)
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None


def own_rows(where: FeedbackFilter, user: Principal) -> FeedbackFilter:
    """Readers see every row; an annotator only its own."""
    if user.may(Permission.read) or user.user_id is None:
        return where
    if where.annotator is not None and where.annotator != user.name:
        raise HTTPException(status_code=403, detail=f"annotator: you may only list your own feedback ({user.name})")
    return FeedbackFilter(since=where.since, until=where.until, annotator=user.name, model=where.model)


async def _create(state: ServiceState, table: type[FeedbackRowMixin], values: dict[str, Any]) -> dict[str, Any]:
    row_id = await state.writer.insert(table, values)
    return to_public(row_from_values(table, row_id, values))


@router.get("/feedback", response_model=schemas.Page[dict[str, Any]])
async def list_feedback(
    session: SessionDep,
    where: FilterDep,
    user: FeedbackReader,
    kind: Annotated[list[Literal["rating", "comparison", "correction"]] | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Feedback of every kind (or of the kinds asked for), newest first. Annotators see their own."""
    where = own_rows(where, user)
    tables = [KIND_TABLES[name] for name in dict.fromkeys(kind or list(KIND_TABLES))]
    page, total = await repository.list_merged_rows(session, tables, where, limit, offset)
    return {"items": [to_public(row) for row in page], "total": total, "limit": limit, "offset": offset}


def add_collection_routes(router: APIRouter, collection: str, table: type[FeedbackRowMixin]) -> None:
    """`GET /v1/<collection>`, `GET /v1/<collection>/{row_id}` and `DELETE /v1/<collection>/{row_id}`."""
    singular = collection[:-1]

    async def list_collection(
        session: SessionDep, where: FilterDep, user: FeedbackReader, limit: Limit = 100, offset: Offset = 0
    ) -> dict[str, Any]:
        """One page of a collection, newest first, filtered by time range, annotator and model. Annotators see
        their own rows."""
        where = own_rows(where, user)
        rows, total = await repository.list_rows(session, table, where, limit, offset)
        return {"items": [to_public(row) for row in rows], "total": total, "limit": limit, "offset": offset}

    async def get_row(row_id: RowIdPath, session: SessionDep, user: FeedbackReader) -> dict[str, Any]:
        """One row by id (an annotator's own rows only)."""
        row = await repository.get_row(session, table, row_id)
        if row is None or (not user.may(Permission.read) and user.user_id is not None and row.annotator != user.name):
            raise HTTPException(status_code=404, detail=f"no {singular} with id {row_id}")
        return to_public(row)

    async def delete_row(row_id: RowIdPath, session: SessionDep, user: Admin) -> None:
        """Delete one row by id."""
        if not await repository.delete_row(session, table, row_id):
            raise HTTPException(status_code=404, detail=f"no {singular} with id {row_id}")

    router.add_api_route(
        f"/{collection}",
        list_collection,
        methods=["GET"],
        response_model=schemas.Page[dict[str, Any]],
        name=f"list_{collection}",
    )
    router.add_api_route(f"/{collection}/{{row_id}}", get_row, methods=["GET"], name=f"get_{singular}")
    router.add_api_route(
        f"/{collection}/{{row_id}}", delete_row, methods=["DELETE"], status_code=204, name=f"delete_{singular}"
    )


for _collection, _table in TABLES.items():
    add_collection_routes(router, _collection, _table)
