"""initial feedback tables

Revision ID: 0001
Revises:
Create Date: 2026-11-24 20:29:34.743822
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "comparisons",
        sa.Column("responses", sa.JSON(), nullable=False),
        sa.Column("ranking", sa.JSON(), nullable=True),
        sa.Column("best_index", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("model", sa.String(length=300), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("annotator", sa.String(length=200), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("prompt_messages", sa.JSON(), nullable=False),
        sa.Column("prompt_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("comparisons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comparisons_annotator"), ["annotator"], unique=False)
        batch_op.create_index(batch_op.f("ix_comparisons_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_comparisons_model"), ["model"], unique=False)
        batch_op.create_index("ix_comparisons_prompt_hash", ["prompt_hash", "id"], unique=False)

    op.create_table(
        "generations",
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=True),
        sa.Column("model_version", sa.String(length=300), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("annotator", sa.String(length=200), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("prompt_messages", sa.JSON(), nullable=False),
        sa.Column("prompt_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generations_annotator"), ["annotator"], unique=False)
        batch_op.create_index(batch_op.f("ix_generations_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_generations_model"), ["model"], unique=False)
        batch_op.create_index("ix_generations_prompt_hash", ["prompt_hash", "id"], unique=False)

    op.create_table(
        "corrections",
        sa.Column("original_response", sa.Text(), nullable=False),
        sa.Column("corrected_response", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("generation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("annotator", sa.String(length=200), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("prompt_messages", sa.JSON(), nullable=False),
        sa.Column("prompt_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["generation_id"], ["generations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("corrections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_corrections_annotator"), ["annotator"], unique=False)
        batch_op.create_index(batch_op.f("ix_corrections_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_corrections_model"), ["model"], unique=False)
        batch_op.create_index("ix_corrections_prompt_hash", ["prompt_hash", "id"], unique=False)

    op.create_table(
        "ratings",
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("generation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("annotator", sa.String(length=200), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("prompt_messages", sa.JSON(), nullable=False),
        sa.Column("prompt_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["generation_id"], ["generations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ratings_annotator"), ["annotator"], unique=False)
        batch_op.create_index(batch_op.f("ix_ratings_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ratings_model"), ["model"], unique=False)
        batch_op.create_index("ix_ratings_prompt_hash", ["prompt_hash", "id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_ratings_prompt_hash")
        batch_op.drop_index(batch_op.f("ix_ratings_model"))
        batch_op.drop_index(batch_op.f("ix_ratings_created_at"))
        batch_op.drop_index(batch_op.f("ix_ratings_annotator"))

    op.drop_table("ratings")
    with op.batch_alter_table("corrections", schema=None) as batch_op:
        batch_op.drop_index("ix_corrections_prompt_hash")
        batch_op.drop_index(batch_op.f("ix_corrections_model"))
        batch_op.drop_index(batch_op.f("ix_corrections_created_at"))
        batch_op.drop_index(batch_op.f("ix_corrections_annotator"))

    op.drop_table("corrections")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_prompt_hash")
        batch_op.drop_index(batch_op.f("ix_generations_model"))
        batch_op.drop_index(batch_op.f("ix_generations_created_at"))
        batch_op.drop_index(batch_op.f("ix_generations_annotator"))

    op.drop_table("generations")
    with op.batch_alter_table("comparisons", schema=None) as batch_op:
        batch_op.drop_index("ix_comparisons_prompt_hash")
        batch_op.drop_index(batch_op.f("ix_comparisons_model"))
        batch_op.drop_index(batch_op.f("ix_comparisons_created_at"))
        batch_op.drop_index(batch_op.f("ix_comparisons_annotator"))

    op.drop_table("comparisons")
