"""`llmfl`: one thin module per command group over the library's stages (`app.py` assembles them)."""

from llm_feedback_loop.cli.app import app, main

__all__ = ["app", "main"]
