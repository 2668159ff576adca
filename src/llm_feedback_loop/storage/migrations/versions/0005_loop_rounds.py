"""loop rounds

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "loop_rounds",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loop", sa.String(length=200), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("base_version_id", ID, nullable=True),
        sa.Column("candidate_version_id", ID, nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=True),
        sa.Column("batch", sa.String(length=200), nullable=True),
        sa.Column("feedback", sa.JSON(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("run_ids", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["base_version_id"], ["model_versions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["candidate_version_id"], ["model_versions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("loop", "round", name="uq_loop_rounds_loop_round"),
    )


def downgrade() -> None:
    op.drop_table("loop_rounds")
