"""The training methods: one module each (`sft.py`, `dpo.py`, `kto.py`, `reward.py`), found by discovery.

Every module of this package but `base` (and private `_name` ones) is a method: it defines `METHOD`, an
instance of `base.TrainingMethod` named as the module. Adding a method is adding its module (and its test):
TrainConfig's `method` choices and fields, `llmfl train`'s METHOD and flags, and the API's accepted methods
all come from here. Discovery is lazy (the first call), so importing this package costs nothing.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_feedback_loop.training.methods.base import Setting, TrainingMethod

NOT_METHODS = frozenset({"base"})


@cache
def all_methods() -> dict[str, TrainingMethod]:
    """{name: method} of every method module in this package, in the order they are listed (`order`)."""
    from llm_feedback_loop.training.methods.base import TrainingMethod

    found: list[TrainingMethod] = []
    for module_info in pkgutil.iter_modules(__path__):
        name = module_info.name
        if name in NOT_METHODS or name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{name}")
        method = getattr(module, "METHOD", None)
        if not isinstance(method, TrainingMethod):
            raise TypeError(f"{module.__name__} must define METHOD, a TrainingMethod (or be named _{name})")
        if method.name != name:
            raise TypeError(f"{module.__name__} defines the method {method.name!r}; a method's module is its name")
        found.append(method)
    return {method.name: method for method in sorted(found, key=lambda method: (method.order, method.name))}


def method_names() -> tuple[str, ...]:
    return tuple(all_methods())


def method_of(name: str) -> TrainingMethod:
    """The method named `name`; ValueError naming the methods there are."""
    method = all_methods().get(name)
    if method is None:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(method_names())}")
    return method


def method_settings() -> dict[str, Setting]:
    """The settings the methods declare of their own, as TrainConfig fields. Methods that share a setting
    (DPO and KTO's `beta`) declare the same one (base.BETA), so it means one thing whichever method runs."""
    settings: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for method in all_methods().values():
        for name, setting in method.settings.items():
            if name in settings and settings[name] is not setting:
                raise TypeError(
                    f"the methods {owners[name]} and {method.name} declare the setting {name!r} differently; "
                    "share one declaration (as base.BETA is shared)"
                )
            settings[name], owners[name] = setting, owners.get(name, method.name)
    return settings


def makes_reward_model(method_name: str | None) -> bool:
    """Whether a version trained by `method_name` scores answers (a reward model) rather than writing them."""
    from llm_feedback_loop.training.methods.base import SCORE

    method = all_methods().get(method_name or "")
    return method is not None and method.head is SCORE
