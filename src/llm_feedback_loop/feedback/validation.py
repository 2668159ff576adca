"""Checks on feedback payloads that Pydantic's types alone cannot express.

Each raises ValueError with a sentence that says what is wrong; Pydantic attaches the field.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from llm_feedback_loop.storage.json_values import JSONValueError, check_json_value, clean_string, describe_path

# The most answers any comparison may hold, whatever MAX_ANSWERS_PER_COMPARISON says (its upper bound): a
# payload over it is refused while parsing. The setting itself is checked by `check_answer_count`.
MAX_ANSWERS = 256


def no_nul(value: str) -> str:
    """Text that can be stored: no NUL character, no lone surrogate."""
    problem = clean_string(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def free_json(value: Any) -> Any:
    """A free-form field (metadata, parameters): JSON the database can store and read back cheaply."""
    try:
        check_json_value(value)
    except JSONValueError as error:
        where = f"at {describe_path(error.path)}: " if error.path else ""
        raise ValueError(f"{where}{error.message}") from None
    return value


def check_answer_count(count: int, limit: int, field: str) -> None:
    """At most `limit` answers (MAX_ANSWERS_PER_COMPARISON): a comparison's pairs grow with its square."""
    if count > limit:
        raise ValueError(
            f"{field}: at most {limit} answers per comparison (MAX_ANSWERS_PER_COMPARISON), got {count}; "
            "split them into several comparisons"
        )


def non_empty_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return no_nul(value)


def check_prompt(prompt: str | None, messages: Sequence[Any] | None) -> None:
    if messages:
        if messages[-1].role != "user":
            raise ValueError("messages must end with a user message (the prompt the answers reply to)")
        if not messages[-1].content.strip():
            raise ValueError("the last user message must not be empty")
        if prompt is not None and prompt != messages[-1].content:
            raise ValueError("give either prompt or messages, or a prompt equal to the last user message")
        return
    if messages is not None:
        raise ValueError("messages must not be an empty list")
    if prompt is None:
        raise ValueError("prompt is required (or messages, a conversation ending with a user message)")
    non_empty_text(prompt)


def check_answer_or_generation(text: str | None, generation_id: int | None, field: str) -> None:
    if text is None and generation_id is None:
        raise ValueError(f"{field} is required unless generation_id names the logged answer")
    if text is not None:
        try:
            non_empty_text(text)
        except ValueError:
            raise ValueError(f"{field} must not be empty") from None


def shorten(values: list[Any], most: int = 20) -> str:
    """A list for a message: its first `most` items, and how many more."""
    if len(values) <= most:
        return str(values)
    return f"[{', '.join(map(str, values[:most]))}, ... ({len(values) - most} more)]"


def check_comparison(
    response_ids: list[Any],
    ranking: list[int] | None,
    best_index: int | None,
    best_index_field: str = "best_index",
) -> None:
    count = len(response_ids)
    if count < 2:
        raise ValueError(f"responses needs at least 2 answers to compare, got {count}")
    seen = Counter(str(i) for i in response_ids if i is not None)  # linear: 20,000 ids are checked in ms
    duplicates = sorted(i for i, times in seen.items() if times > 1)[:10]
    if duplicates:
        raise ValueError(f"responses have duplicate ids: {', '.join(duplicates)}")
    if ranking is not None and sorted(ranking) != list(range(count)):
        raise ValueError(
            f"ranking must list each response index 0..{count - 1} exactly once (best first), got {shorten(ranking)}"
        )
    if best_index is not None and not 0 <= best_index < count:
        raise ValueError(f"{best_index_field} must be between 0 and {count - 1}, got {best_index}")
    if ranking is not None and best_index is not None and ranking[0] != best_index:
        raise ValueError(f"{best_index_field} {best_index} disagrees with ranking, whose best response is {ranking[0]}")
