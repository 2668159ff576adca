"""tasks get a prompt_hash, like every feedback row: exports group and split the queue's prompts by it

Tasks loaded before this revision are given the hash of their messages.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 04:30:00
"""

import sqlalchemy as sa
from alembic import op

from llm_feedback_loop.storage.prompts import prompt_hash

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BACKFILL_BATCH = 1000


def upgrade() -> None:
    op.add_column("tasks", sa.Column("prompt_hash", sa.String(length=64), nullable=True))
    backfill_hashes(op.get_bind())
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("prompt_hash", existing_type=sa.String(length=64), nullable=False)
    op.create_index("ix_tasks_prompt_hash", "tasks", ["prompt_hash", "id"], unique=False)


def backfill_hashes(connection: sa.Connection) -> None:
    tasks = sa.table("tasks", sa.column("id", ID), sa.column("prompt_messages", sa.JSON), sa.column("prompt_hash"))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(tasks.c.id, tasks.c.prompt_messages)
            .where(tasks.c.id > last)
            .order_by(tasks.c.id)
            .limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        for task_id, messages in rows:
            connection.execute(
                sa.update(tasks).where(tasks.c.id == task_id).values(prompt_hash=prompt_hash(messages or []))
            )
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_tasks_prompt_hash", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("prompt_hash")
