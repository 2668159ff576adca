"""Alembic environment. The connection comes from `storage.migrate` (online mode only)."""

from alembic import context

from llm_feedback_loop.storage.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with `llmfl db upgrade`, which supplies the database connection.")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
