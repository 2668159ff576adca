"""Judges of a candidate's answer against another's, for win rates. `--judge` names one:

- a reward model: a registered version of method `reward`, or its folder: the higher score wins;
- `fn:MODULE:FUNCTION` (or `fn:FILE.py:FUNCTION`, or `fn:TASK` for an objective's score): a Python function
  (prompt, answer) → number; the higher wins;
- `http(s)://…/v1`: an OpenAI-compatible chat model (`--judge-model` names it; `JUDGE_API_KEY` its key)
  asked which of two answers is better, in both orders so that the position of an answer does not decide:
  a win needs both verdicts, a split is a tie.

Every judge returns a score per side; the win rate counts a tie as half.

A chat judge's failure names its URL without credentials and the status, never the endpoint's body (which may
echo the key); the log has the body's start, keys redacted. Its `name`, written into reports, has no
credentials either.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any, Protocol

from llm_feedback_loop.logging_redaction import (
    UpstreamStatus,
    failure_detail,
    failure_reason,
    split_userinfo,
    url_without_credentials,
)

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]

JUDGE_PROMPT = """Which answer to the user's message is better: more helpful, correct and well written?

User's message:
{prompt}

Answer A:
{first}

Answer B:
{second}

Reply with the single letter A or B."""


class JudgeError(RuntimeError):
    """The judge could not give a verdict (an endpoint that failed, a function that raised)."""


class Judge(Protocol):
    name: str
    scores: bool  # whether its per-answer figures are scores worth plotting (not just verdicts)

    def judge(self, prompt: Messages, candidate: str, other: str) -> tuple[float, float]: ...


class RewardModelJudge:
    scores = True

    def __init__(self, name: str, model: Any, tokenizer: Any) -> None:
        self.name, self.model, self.tokenizer = name, model, tokenizer

    def judge(self, prompt: Messages, candidate: str, other: str) -> tuple[float, float]:
        from llm_feedback_loop.evaluation.preference import reward_score

        return tuple(  # type: ignore[return-value]
            reward_score(self.model, self.tokenizer, prompt, [{"role": "assistant", "content": answer}])
            for answer in (candidate, other)
        )


class FunctionJudge:
    scores = True

    def __init__(self, name: str, function: Callable[[str, str], float]) -> None:
        self.name, self.function = name, function

    def judge(self, prompt: Messages, candidate: str, other: str) -> tuple[float, float]:
        text = prompt[-1]["content"]
        try:
            return float(self.function(text, candidate)), float(self.function(text, other))
        except Exception as error:  # a user's function: say which and why, not a stack trace
            raise JudgeError(f"the judge function {self.name} failed: {type(error).__name__}: {error}") from None


class ChatModelJudge:
    """An OpenAI-compatible chat endpoint asked for a verdict, in both orders."""

    scores = False

    def __init__(self, base_url: str, model: str | None, api_key: str | None = None, client: Any = None) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.shown_url = url_without_credentials(self.base_url)
        self.model = model
        self.name = f"{model or 'judge'} at {self.shown_url}"
        url, url_auth = split_userinfo(self.base_url)
        # The key, when there is one, is what is sent: httpx would otherwise replace it by the URL's user:password.
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(
            base_url=url, headers=headers, auth=None if api_key else url_auth, timeout=120
        )

    def verdict(self, prompt: str, first: str, second: str) -> str | None:
        import httpx

        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": JUDGE_PROMPT.format(prompt=prompt, first=first, second=second)}],
            "max_tokens": 4,
            "temperature": 0,
        }
        if self.model:
            body["model"] = self.model
        try:
            response = self.client.post("/chat/completions", json=body)
            if response.status_code >= 400:
                raise UpstreamStatus(response.status_code, response.text)
            text = str(response.json()["choices"][0]["message"]["content"] or "")
        except (httpx.HTTPError, UpstreamStatus, KeyError, IndexError, TypeError, ValueError) as error:
            log.error("the judge at %s failed: %s", self.shown_url, failure_detail(error))
            raise JudgeError(f"the judge at {self.shown_url} failed: {failure_reason(error)}") from None
        found = re.search(r"\b([AB])\b", text.strip().upper())
        return found.group(1) if found else None

    def judge(self, prompt: Messages, candidate: str, other: str) -> tuple[float, float]:
        text = prompt[-1]["content"]
        forward = self.verdict(text, candidate, other)  # the candidate is A
        backward = self.verdict(text, other, candidate)  # the candidate is B
        if forward == "A" and backward == "B":
            return 1.0, 0.0
        if forward == "B" and backward == "A":
            return 0.0, 1.0
        return 0.5, 0.5


def load_judge(spec: str, model: str | None, reward_model: Callable[[str], tuple[Any, Any]]) -> Judge:
    """The judge `spec` names; `reward_model(ref)` loads a reward model and its tokenizer."""
    if spec.startswith(("http://", "https://")):
        return ChatModelJudge(spec, model, os.environ.get("JUDGE_API_KEY"))
    if spec.startswith("fn:"):
        from llm_feedback_loop.objectives.base import load_scorer

        return FunctionJudge(spec[3:], load_scorer(spec[3:]))
    loaded, tokenizer = reward_model(spec)
    return RewardModelJudge(spec, loaded, tokenizer)
