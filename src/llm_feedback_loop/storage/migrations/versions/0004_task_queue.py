"""task queue

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch", sa.String(length=200), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("prompt_messages", sa.JSON(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=True),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tasks_batch", "tasks", ["batch"], unique=False)
    op.create_table(
        "task_annotations",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", ID, nullable=False),
        sa.Column("annotator", sa.String(length=200), nullable=False),
        sa.Column("comparison_id", ID, nullable=True),
        sa.Column("ranking", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["comparison_id"], ["comparisons.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id", "annotator", name="uq_task_annotations_task_annotator"),
    )
    op.create_index("ix_task_annotations_task_id", "task_annotations", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_task_annotations_task_id", table_name="task_annotations")
    op.drop_table("task_annotations")
    op.drop_index("ix_tasks_batch", table_name="tasks")
    op.drop_table("tasks")
