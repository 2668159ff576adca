"""`llmfl db`: the database schema.

llmfl db upgrade                 # create or migrate the database (every command does this first)
"""

from __future__ import annotations

import typer

from llm_feedback_loop.cli.common import console, load_settings, with_database

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or bring its schema up to date."""
    from llm_feedback_loop.storage.engine import describe_database
    from llm_feedback_loop.storage.migrate import current_revision

    revision = with_database(current_revision)
    console.print(f"database at revision {revision}: {describe_database(load_settings().database_url)}")
