"""arena battles: the battles the service issued, each voted on at most once

Votes stored before this revision (comparisons with metadata {"arena": true, "winner": ...} whose two answers
name two model versions) become voted battles, so the leaderboard keeps counting them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BACKFILL_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "arena_battles",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("annotator", sa.String(length=200), nullable=False),
        sa.Column("prompt_hash", sa.String(length=64), nullable=False),
        sa.Column("left_generation_id", ID, nullable=True),
        sa.Column("right_generation_id", ID, nullable=True),
        sa.Column("left_version", sa.String(length=300), nullable=False),
        sa.Column("right_version", sa.String(length=300), nullable=False),
        sa.Column("left_version_id", ID, nullable=True),
        sa.Column("right_version_id", ID, nullable=True),
        sa.Column("voted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("winner", sa.String(length=8), nullable=True),
        sa.Column("comparison_id", ID, nullable=True),
        sa.ForeignKeyConstraint(["left_generation_id"], ["generations.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["right_generation_id"], ["generations.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["left_version_id"], ["model_versions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["right_version_id"], ["model_versions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["comparison_id"], ["comparisons.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_arena_battles_generations", "arena_battles", ["left_generation_id", "right_generation_id"], unique=False
    )
    op.create_index("ix_arena_battles_comparison_id", "arena_battles", ["comparison_id"], unique=False)
    backfill_votes(op.get_bind())


def battle_of_vote(row: Any, version_ids: dict[str, int]) -> dict[str, Any] | None:
    """The voted battle an old arena vote (a comparisons row) stands for, or None when it is not one."""
    meta, responses = row["metadata"] or {}, row["responses"] or []
    if not isinstance(meta, dict) or not isinstance(responses, list):
        return None
    if meta.get("arena") is not True or meta.get("winner") not in ("left", "right", "tie") or len(responses) != 2:
        return None
    left, right = (response if isinstance(response, dict) else {} for response in responses)
    left_version, right_version = left.get("model_version"), right.get("model_version")
    if not left_version or not right_version or left_version == right_version:
        return None
    return {
        "created_at": row["created_at"],
        "annotator": (row["annotator"] or "")[:200],
        "prompt_hash": row["prompt_hash"],
        "left_generation_id": left.get("generation_id"),
        "right_generation_id": right.get("generation_id"),
        "left_version": left_version,
        "right_version": right_version,
        "left_version_id": version_ids.get(left_version),
        "right_version_id": version_ids.get(right_version),
        "voted_at": row["created_at"],
        "winner": meta["winner"],
        "comparison_id": row["id"],
    }


def backfill_votes(connection: sa.Connection) -> None:
    comparisons = sa.table(
        "comparisons",
        sa.column("id", ID),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("annotator", sa.String),
        sa.column("metadata", sa.JSON),
        sa.column("responses", sa.JSON),
        sa.column("prompt_hash", sa.String),
    )
    versions = sa.table("model_versions", sa.column("id", ID), sa.column("name", sa.String))
    battles = sa.table(
        "arena_battles",
        *(
            sa.column(name)
            for name in (
                "created_at",
                "annotator",
                "prompt_hash",
                "left_generation_id",
                "right_generation_id",
                "left_version",
                "right_version",
                "left_version_id",
                "right_version_id",
                "voted_at",
                "winner",
                "comparison_id",
            )
        ),
    )
    version_ids = {
        name: version_id for version_id, name in connection.execute(sa.select(versions.c.id, versions.c.name))
    }
    # The text filter only narrows the scan; battle_of_vote decides on the parsed metadata.
    query = (
        sa.select(comparisons)
        .where(sa.cast(comparisons.c.metadata, sa.Text).like('%"arena"%'))
        .order_by(comparisons.c.id)
    )
    pending: list[dict[str, Any]] = []
    for row in connection.execute(query).mappings():
        battle = battle_of_vote(row, version_ids)
        if battle is not None:
            pending.append(battle)
        if len(pending) >= BACKFILL_BATCH:
            connection.execute(sa.insert(battles), pending)
            pending = []
    if pending:
        connection.execute(sa.insert(battles), pending)


def downgrade() -> None:
    op.drop_index("ix_arena_battles_comparison_id", table_name="arena_battles")
    op.drop_index("ix_arena_battles_generations", table_name="arena_battles")
    op.drop_table("arena_battles")
