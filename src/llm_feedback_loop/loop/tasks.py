"""The names objectives had before they moved to `llm_feedback_loop.objectives` (where "task" came to mean
only the annotation queue). Kept so that objective files written for earlier releases
(`from llm_feedback_loop.loop.tasks import LoopTask`) still load; new code imports `objectives.base`."""

from llm_feedback_loop.objectives.base import BUILTIN_OBJECTIVES as BUILTIN_TASKS
from llm_feedback_loop.objectives.base import Objective as LoopTask
from llm_feedback_loop.objectives.base import ObjectiveError as TaskError
from llm_feedback_loop.objectives.base import Scorer, import_object, load_scorer
from llm_feedback_loop.objectives.base import load_objective as load_task

__all__ = ["BUILTIN_TASKS", "LoopTask", "Scorer", "TaskError", "import_object", "load_scorer", "load_task"]
