"""The OpenAI-compatible request bodies refuse what the engine cannot take, before anything runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llm_feedback_loop.serving.openai_schemas import ChatCompletionRequest

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"stop": "a" * 201}, "stop"),  # looked for after every token: bounded
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"seed": 2**64}, "seed"),  # beyond what torch's generator takes
        ({"seed": -(2**63) - 1}, "seed"),
    ],
)
def test_stop_strings_and_seeds_are_bounded(fields: dict, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        ChatCompletionRequest(messages=MESSAGES, **fields)


def test_stop_strings_and_seeds_within_bounds_are_taken() -> None:
    body = ChatCompletionRequest(messages=MESSAGES, stop=["a" * 200, "\n"], seed=2**64 - 1)
    assert body.sampling(16).seed == 2**64 - 1
