"""Checks on feedback payloads that Pydantic's types alone cannot express.

Each raises ValueError with a sentence that says what is wrong; Pydantic attaches the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


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


def check_comparison(
    response_ids: list[Any],
    ranking: list[int] | None,
    best_index: int | None,
    best_index_field: str = "best_index",
) -> None:
    count = len(response_ids)
    if count < 2:
        raise ValueError(f"responses needs at least 2 answers to compare, got {count}")
    given = [str(i) for i in response_ids if i is not None]
    duplicates = sorted({i for i in given if given.count(i) > 1})
    if duplicates:
        raise ValueError(f"responses have duplicate ids: {', '.join(duplicates)}")
    if ranking is not None and sorted(ranking) != list(range(count)):
        raise ValueError(
            f"ranking must list each response index 0..{count - 1} exactly once (best first), got {ranking}"
        )
    if best_index is not None and not 0 <= best_index < count:
        raise ValueError(f"{best_index_field} must be between 0 and {count - 1}, got {best_index}")
    if ranking is not None and best_index is not None and ranking[0] != best_index:
        raise ValueError(f"{best_index_field} {best_index} disagrees with ranking, whose best response is {ranking[0]}")
