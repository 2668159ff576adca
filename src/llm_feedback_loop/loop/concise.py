"""The built-in `concise` objective under its earlier name (`llm_feedback_loop.loop.concise:TASK`); it lives in
`llm_feedback_loop.objectives.concise`."""

from llm_feedback_loop.objectives.concise import TASK

__all__ = ["TASK"]
