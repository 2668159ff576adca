"""The database tables. Every row has an id, timestamps, an annotator and free-form metadata (JSON).

`prompt_messages` holds the conversation the answers reply to (a list of chat messages ending with a
user turn); `prompt` is the text of that last user turn, kept for display and for the original API.
`prompt_hash` identifies the conversation: exports group by it and split train/test by it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware datetimes (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class FeedbackRowMixin:
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now, nullable=False)
    annotator: Mapped[str | None] = mapped_column(String(200), index=True)
    # "metadata" is reserved by SQLAlchemy's declarative base, so the attribute is `extra`.
    extra: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    prompt_messages: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    prompt_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class Generation(FeedbackRowMixin, Base):
    """An answer the system produced and showed, with the model version that produced it."""

    __tablename__ = "generations"

    response: Mapped[str] = mapped_column(Text, nullable=False)
    model: Mapped[str | None] = mapped_column(String(300), index=True)
    model_version: Mapped[str | None] = mapped_column(String(300))
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_generations_prompt_hash", "prompt_hash", "id"),)


class Rating(FeedbackRowMixin, Base):
    """A thumbs up or down on one answer."""

    __tablename__ = "ratings"

    response: Mapped[str] = mapped_column(Text, nullable=False)
    rating: Mapped[str] = mapped_column(String(8), nullable=False)
    model: Mapped[str | None] = mapped_column(String(300), index=True)
    comment: Mapped[str | None] = mapped_column(Text)
    generation_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("generations.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_ratings_prompt_hash", "prompt_hash", "id"),)


class Comparison(FeedbackRowMixin, Base):
    """Several answers to one prompt, ranked best first (`ranking`) or with only a best pick."""

    __tablename__ = "comparisons"

    # [{"id": str, "text": str, "generation_id": int | None, "model": str | None}, ...]
    responses: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    ranking: Mapped[list[Any] | None] = mapped_column(JSON)
    best_index: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(300), index=True)

    __table_args__ = (Index("ix_comparisons_prompt_hash", "prompt_hash", "id"),)


class Correction(FeedbackRowMixin, Base):
    """An annotator's better answer in place of an answer the model gave."""

    __tablename__ = "corrections"

    original_response: Mapped[str] = mapped_column(Text, nullable=False)
    corrected_response: Mapped[str] = mapped_column(Text, nullable=False)
    model: Mapped[str | None] = mapped_column(String(300), index=True)
    comment: Mapped[str | None] = mapped_column(Text)
    generation_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("generations.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_corrections_prompt_hash", "prompt_hash", "id"),)


FEEDBACK_TABLES: dict[str, type[FeedbackRowMixin]] = {
    "rating": Rating,
    "comparison": Comparison,
    "correction": Correction,
}


def check_column_names(table: type[Base], values: dict[str, Any]) -> None:
    """Core inserts ignore keys that are not columns; refuse them instead of losing the data."""
    unknown = values.keys() - table.__table__.columns.keys()
    if unknown:
        raise ValueError(f"not columns of {table.__tablename__}: {', '.join(sorted(unknown))}")


class ModelVersion(Base):
    """A model the loop can use: the base model, or one trained from feedback.

    `source` is what the loader takes: a hub id, a local folder, a GGUF file, or a LoRA adapter folder
    (whose base is then the parent's source). Exactly one version is `active`: chat and serving use it.
    """

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now, nullable=False)
    name: Mapped[str] = mapped_column(String(300), nullable=False, unique=True)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    parent_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("model_versions.id", ondelete="SET NULL"))
    method: Mapped[str] = mapped_column(String(50), nullable=False)  # base | sft | dpo | kto | reward | ...
    status: Mapped[str] = mapped_column(String(20), nullable=False, index=True)  # candidate | active | retired
    description: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)


class TrainingRun(Base):
    """One training run: what it trained (method, effective config), on what (dataset manifest and file
    hashes), from which model version, what came out (output folder, the registered candidate version,
    metrics) and how it went (status, error, timings).

    status: queued → running → completed | failed | interrupted (resumable from its last checkpoint).
    """

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now, nullable=False)
    method: Mapped[str] = mapped_column(String(50), nullable=False)  # sft | dpo | kto | reward
    status: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    dataset: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    parent_version_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("model_versions.id", ondelete="SET NULL"))
    base_source: Mapped[str | None] = mapped_column(Text)
    output_dir: Mapped[str] = mapped_column(Text, nullable=False)
    output_version_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("model_versions.id", ondelete="SET NULL"))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pid: Mapped[int | None] = mapped_column(Integer)  # the process training it, while queued or running
    host: Mapped[str | None] = mapped_column(String(255))  # the machine that process runs on


class Task(Base):
    """A prompt in the annotation queue, to be judged by `required` annotators. `answers` are the
    candidates every annotator of the task ranks: given when the task is loaded, or generated once by the
    active model when the task is first handed out (so all annotators judge the same answers)."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False)
    batch: Mapped[str | None] = mapped_column(String(200), index=True)
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    prompt_messages: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    prompt_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    answers: Mapped[list[Any] | None] = mapped_column(JSON)  # [{"text", "generation_id"?}]
    required: Mapped[int] = mapped_column(Integer, nullable=False)
    extra: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    error: Mapped[str | None] = mapped_column(Text)  # why its answers could not be generated; skipped then

    __table_args__ = (Index("ix_tasks_prompt_hash", "prompt_hash", "id"),)


class TaskAnnotation(Base):
    """One annotator's judgement of a task: the comparison it stored (None when only rated or corrected)."""

    __tablename__ = "task_annotations"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False)
    task_id: Mapped[int] = mapped_column(IdType, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False)
    annotator: Mapped[str] = mapped_column(String(200), nullable=False)
    comparison_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("comparisons.id", ondelete="SET NULL"))
    ranking: Mapped[list[int] | None] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("task_id", "annotator", name="uq_task_annotations_task_annotator"),
        Index("ix_task_annotations_task_id", "task_id"),
    )


class LoopRound(Base):
    """One round of `llmfl loop`: which version generated the answers (`base`), the feedback batch it
    collected and the export made of it, the training runs, the candidate they produced, its evaluation
    against the base on the task's held-out prompts, and whether it was promoted. Round 0 evaluates the
    starting version only.

    status: running → completed | failed.
    """

    __tablename__ = "loop_rounds"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now, nullable=False)
    loop: Mapped[str] = mapped_column(String(200), nullable=False)
    round: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    task: Mapped[str] = mapped_column(String(200), nullable=False)
    base_version_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("model_versions.id", ondelete="SET NULL"))
    candidate_version_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    promoted: Mapped[bool | None] = mapped_column(Boolean)
    batch: Mapped[str | None] = mapped_column(String(200))  # the annotation tasks' batch of this round
    feedback: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # counts of what the annotators stored
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # export path per method, with its manifest
    run_ids: Mapped[list[Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {"base": {...}, "candidate": {...}}
    decision: Mapped[list[Any] | None] = mapped_column(JSON)  # why it was (not) promoted
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("loop", "round", name="uq_loop_rounds_loop_round"),)


class User(Base):
    """Someone who signs in, or the owner of API keys. `role`: admin | annotator | viewer (see auth.roles).
    `password_hash` is None for a user who signs in only through a one-time login link or uses keys."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class ApiKey(Base):
    """An API key: `llmfl_<prefix>_<secret>`. The prefix is stored as it is (to find the key and show it);
    the secret only as its SHA-256 (a 256-bit random secret needs no slow hash). `role` may be lower than the
    user's; the key's is what a request gets."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False)
    prefix: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[int] = mapped_column(IdType, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser (the HttpOnly cookie holds the token; only its SHA-256 is stored), or a one-time
    login link not used yet (`kind` = "link": exchanged once for a session, then deleted)."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)  # session | link
    user_id: Mapped[int] = mapped_column(IdType, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class IdempotencyRecord(Base):
    """The first answer to a POST sent with an `Idempotency-Key` header, replayed to its retries.
    `scope` is the caller (user id) and the key: one caller's key never answers another's request."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False)
    scope: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)  # None while the first request is in flight
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Text)


class ArenaBattle(Base):
    """An arena battle the service issued: two versions answered one prompt for `annotator`, in the order
    shown (left, right). Only such a battle can be voted on, once, by that annotator: the vote sets
    `voted_at`, `winner` and `comparison_id` with an UPDATE ... WHERE voted_at IS NULL in the transaction
    that stores the comparison, so concurrent votes on one battle store one comparison. The leaderboard
    counts the battles whose comparison still exists."""

    __tablename__ = "arena_battles"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, nullable=False)
    annotator: Mapped[str] = mapped_column(String(200), nullable=False)
    prompt_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    left_generation_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("generations.id", ondelete="SET NULL"))
    right_generation_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("generations.id", ondelete="SET NULL"))
    left_version: Mapped[str] = mapped_column(String(300), nullable=False)
    right_version: Mapped[str] = mapped_column(String(300), nullable=False)
    left_version_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("model_versions.id", ondelete="SET NULL"))
    right_version_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("model_versions.id", ondelete="SET NULL"))
    voted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    winner: Mapped[str | None] = mapped_column(String(8))  # left | right | tie, once voted
    comparison_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("comparisons.id", ondelete="SET NULL"))

    __table_args__ = (
        Index("ix_arena_battles_generations", "left_generation_id", "right_generation_id"),
        Index("ix_arena_battles_comparison_id", "comparison_id"),
    )
