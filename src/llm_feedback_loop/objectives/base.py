"""What a loop optimises: an objective names the prompts to collect feedback on, the held-out prompts to
evaluate on, and a programmatic score of an answer (what the simulated annotator prefers, and the figure
each round reports). A coherence check guards against answers that score well by being degenerate.

An objective of your own is a Python object: `llmfl loop --task my_module:TASK` or
`--task path/to/file.py:TASK`, where TASK is an `Objective` (or a function returning one). The CLI flag is
still `--task`, and `LoopTask` (the class's earlier name) still works in such files.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Scorer = Callable[[str, str], float]  # (prompt, answer) → score in [0, 1]


class ObjectiveError(ValueError):
    """An objective that cannot be found or used; the message says why."""


@dataclass(frozen=True)
class Objective:
    name: str
    description: str
    train_prompts: list[str]
    eval_prompts: list[str]
    score: Scorer
    coherent: Callable[[str, str], bool] | None = None
    # Further per-answer measures averaged over the held-out answers and reported (not optimised).
    measures: dict[str, Scorer] = field(default_factory=dict)
    # What the simulated annotator goes by (default: `score`). A person who prefers short answers still
    # does not prefer a short answer that is nonsense: an objective can say so here.
    preference: Scorer | None = None

    def prefers(self, prompt: str, answer: str) -> float:
        return (self.preference or self.score)(prompt, answer)

    def __post_init__(self) -> None:
        if not self.train_prompts:
            raise ObjectiveError(f"task {self.name!r} has no prompts to collect feedback on")
        if not self.eval_prompts:
            raise ObjectiveError(f"task {self.name!r} has no held-out prompts to evaluate on")
        if set(self.train_prompts) & set(self.eval_prompts):
            raise ObjectiveError(f"task {self.name!r}: its held-out prompts must not be among its feedback prompts")

    def round_prompts(self, round_number: int, count: int) -> list[str]:
        """The `count` prompts of a round: the feedback prompts in turn, a new stretch each round."""
        count = min(count, len(self.train_prompts))
        start = ((round_number - 1) * count) % len(self.train_prompts)
        doubled = self.train_prompts + self.train_prompts
        return doubled[start : start + count]


LoopTask = Objective  # its earlier name, which users' objective files (`my_tasks.py:TASK`) import

BUILTIN_OBJECTIVES = {
    name: f"llm_feedback_loop.objectives.{name}:TASK" for name in ("concise", "specific", "bullets", "plain")
}


def import_object(spec: str) -> Any:
    """The object `package.module:NAME` or `path/to/file.py:NAME` names."""
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ObjectiveError(f"{spec!r}: expected MODULE:NAME or FILE.py:NAME")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise ObjectiveError(f"{spec!r}: file {where} does not exist")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            assert module_spec is not None and module_spec.loader is not None
            module: Any = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as error:
        raise ObjectiveError(f"{spec!r}: cannot import {where} ({error})") from None
    if not hasattr(module, name):
        raise ObjectiveError(f"{spec!r}: {where} has no {name}")
    return getattr(module, name)


def load_objective(spec: str) -> Objective:
    """A built-in objective (`concise`), or `package.module:NAME` / `path/to/file.py:NAME` naming an Objective
    (or a function returning one)."""
    found = import_object(BUILTIN_OBJECTIVES.get(spec, spec))
    objective = found() if callable(found) and not isinstance(found, Objective) else found
    if not isinstance(objective, Objective):
        raise ObjectiveError(f"task {spec!r} is a {type(objective).__name__}, not an Objective")
    return objective


def load_scorer(spec: str) -> Scorer:
    """A scoring function (prompt, answer) → float: an objective's score (`concise`, or MODULE:TASK) or any
    function `package.module:function` / `path/to/file.py:function`."""
    found = import_object(BUILTIN_OBJECTIVES.get(spec, spec))
    if isinstance(found, Objective):
        return found.score
    if not callable(found):
        raise ObjectiveError(f"{spec!r} is a {type(found).__name__}, not a function of (prompt, answer)")
    return found
