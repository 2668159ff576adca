"""The dataset kinds, in one table: per kind its columns, what a valid row holds, and the builder that makes its
rows from one prompt's feedback. The export writes these rows, training checks them before any model loads,
and evaluation reads them; none of them keeps a list of its own.

| kind   | columns                     | from                                               |
|--------|-----------------------------|----------------------------------------------------|
| sft    | prompt, completion          | answers voted up, corrections (and best answers)   |
| dpo    | prompt, chosen, rejected    | comparisons, corrections, opposite thumbs          |
| reward | prompt, chosen, rejected    | the same pairs as dpo                              |
| kto    | prompt, completion, label   | thumbs up / down                                   |
| prompt | prompt                      | every prompt with feedback (online RL samples them)|

A kind is one entry of KINDS (and its row builder in rows.py). Kinds of the same `shape` hold the same rows, so
an export of one trains a method that asks for the other (a dpo export trains a reward model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from llm_feedback_loop.training_data.rows import kto_rows, pair_rows, prompt_rows, sft_rows

if TYPE_CHECKING:
    from llm_feedback_loop.feedback.records import PromptGroup
    from llm_feedback_loop.training_data.options import ExportOptions
    from llm_feedback_loop.training_data.rows import GroupRows

ROLES = {"system", "user", "assistant", "tool"}

ValueCheck = Callable[[Any], str | None]  # why a column's value is wrong; None when it is fine
RowCheck = Callable[[dict[str, Any]], str | None]  # why a row (its columns each fine) is wrong


def problem_with_text_or_messages(value: Any, *, prompt: bool) -> str | None:
    """Why `value` is neither non-empty text nor a list of chat messages; None when it is fine."""
    if isinstance(value, str):
        return None if value.strip() else "is empty"
    if not isinstance(value, list):
        return f"must be text or a list of chat messages, not {type(value).__name__}"
    if not value:
        return "is an empty list of messages"
    for position, message in enumerate(value):
        if not isinstance(message, dict):
            return f"message {position} is not an object"
        if message.get("role") not in ROLES:
            return f"message {position} has role {message.get('role')!r}; expected one of {', '.join(sorted(ROLES))}"
        if not isinstance(message.get("content"), str):
            return f"message {position} has no text content"
    if not prompt and value[-1]["role"] != "assistant":
        return "must end with an assistant message"
    return None


def prompt_value(value: Any) -> str | None:
    return problem_with_text_or_messages(value, prompt=True)


def answer_value(value: Any) -> str | None:
    return problem_with_text_or_messages(value, prompt=False)


def label_value(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, not {value!r}"


def different_answers(row: dict[str, Any]) -> str | None:
    return 'fields "chosen" and "rejected" are the same answer' if row["chosen"] == row["rejected"] else None


@dataclass(frozen=True)
class Kind:
    """One dataset kind: its columns (each with the check of its values), checks over a whole row, the
    builder of its rows, and its shape (kinds of one shape hold the same rows)."""

    name: str
    columns: dict[str, ValueCheck]
    build_rows: Callable[[PromptGroup, ExportOptions], GroupRows]
    shape: str
    row_checks: tuple[RowCheck, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def reads(self, other: str) -> bool:
        """Whether rows exported as kind `other` are rows of this kind."""
        found = KINDS.get(other)
        return found is not None and found.shape == self.shape

    def row_problems(self, row: Any) -> list[str]:
        """What is wrong with one row of this kind (empty when nothing is)."""
        if not isinstance(row, dict):
            return [f"expected a JSON object, got {type(row).__name__}"]
        problems = []
        for column, check in self.columns.items():
            if column not in row or row[column] is None:
                problems.append(f'field "{column}" is missing')
            elif problem := check(row[column]):
                problems.append(f'field "{column}" {problem}')
        if not problems:
            problems += [problem for check in self.row_checks if (problem := check(row))]
        return problems


PAIR_COLUMNS: dict[str, ValueCheck] = {"prompt": prompt_value, "chosen": answer_value, "rejected": answer_value}

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("sft", {"prompt": prompt_value, "completion": answer_value}, sft_rows, shape="prompt-completion"),
        Kind("dpo", PAIR_COLUMNS, pair_rows, shape="preference-pair", row_checks=(different_answers,)),
        Kind("reward", PAIR_COLUMNS, pair_rows, shape="preference-pair", row_checks=(different_answers,)),
        Kind(
            "kto",
            {"prompt": prompt_value, "completion": answer_value, "label": label_value},
            kto_rows,
            shape="labelled-completion",
        ),
        Kind("prompt", {"prompt": prompt_value}, prompt_rows, shape="prompt-only"),
    )
}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)
DatasetKind = Literal[KIND_NAMES]  # type: ignore[valid-type]  # the names above, for pydantic and FastAPI


def kind_of(name: str) -> Kind:
    """The kind named `name`; ValueError naming the kinds there are."""
    found = KINDS.get(name)
    if found is None:
        raise ValueError(f"unknown dataset kind {name!r}; choose one of {', '.join(KIND_NAMES)}")
    return found


def as_messages(value: str | list[dict[str, str]], role: str) -> list[dict[str, str]]:
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def to_conversational(row: dict[str, Any]) -> dict[str, Any]:
    """A plain-text row as chat messages, so TRL applies the model's chat template: the prompt becomes
    a user turn and each answer an assistant turn. Rows already in messages are returned unchanged."""
    converted = dict(row)
    converted["prompt"] = as_messages(row["prompt"], "user")
    for column in ("completion", "chosen", "rejected"):
        if column in row:
            converted[column] = as_messages(row[column], "assistant")
    return converted
