"""Where chat answers come from: the local model in-process, or an OpenAI-compatible HTTP endpoint.

Both return the answers that came back and say how many failed: `n` candidates are requested in parallel
and partial results are kept, as the original did.

What a failed provider tells the client is short and safe: the URL without credentials, the status and its
standard reason ("it answered 401 Unauthorized"), never the provider's body, which may echo the
request's key. The server log has the body's start, with keys redacted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from llm_feedback_loop.logging_redaction import (
    UpstreamStatus,
    failure_detail,
    failure_reason,
    redact,
    split_userinfo,
    url_without_credentials,
)
from llm_feedback_loop.serving.engine import SamplingParams
from llm_feedback_loop.serving.slot import Lease, ModelSlot

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    text: str
    model: str
    model_version: str | None
    finish_reason: str | None


@dataclass
class ChatOutcome:
    candidates: list[Candidate] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class ProviderError(RuntimeError):
    """Every answer failed. `status` is 504 for time-outs, 502 otherwise."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class ChatProvider(Protocol):
    name: str

    async def chat(self, messages: list[dict[str, str]], n: int, params: SamplingParams) -> ChatOutcome: ...


def raise_if_all_failed(outcome: ChatOutcome, provider: str, timed_out: bool) -> ChatOutcome:
    if outcome.candidates:
        return outcome
    reasons = "; ".join(dict.fromkeys(outcome.errors)) or "no answer"  # n equal failures are said once
    raise ProviderError(f"the {provider} chat provider failed: {reasons}", status=504 if timed_out else 502)


class LocalProvider:
    """The active model version, loaded into this process."""

    name = "local"

    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot

    async def lease(self) -> Lease:
        """The active version's model, held until released (serving/slot.py); a newly activated (promoted)
        version is loaded before answering."""
        if await self.slot.active_changed():
            await self.slot.switch(None)
        return await self.slot.lease()

    async def chat(self, messages: list[dict[str, str]], n: int, params: SamplingParams) -> ChatOutcome:
        with await self.lease() as lease:
            served = lease.served
            input_ids = await served.engine.encode_chat_async(messages)
            served.engine.check_fits(input_ids, params.max_tokens)
            results = await asyncio.gather(
                *(served.engine.complete(input_ids, params.for_choice(i)) for i in range(n)), return_exceptions=True
            )
        outcome = ChatOutcome()
        for result in results:
            if isinstance(result, BaseException):
                log.error("local generation failed: %s", redact(str(result)))
                outcome.errors.append(f"local generation failed ({type(result).__name__}; the server log has more)")
            else:
                outcome.candidates.append(Candidate(result.text, served.source, served.name, result.finish_reason))
        return raise_if_all_failed(outcome, self.name, timed_out=False)


class OpenAICompatibleProvider:
    """Any endpoint speaking `POST {base}/chat/completions`: our inference server, vLLM, Ollama, OpenRouter.

    One request per candidate (several providers ignore `n`), sent in parallel. `shown_url` is the base URL
    without credentials: the only form that goes into a message.
    """

    def __init__(self, name: str, base_url: str, model: str | None, api_key: str | None, timeout_s: float) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.shown_url = url_without_credentials(self.base_url)
        self.model = model
        url, url_auth = split_userinfo(self.base_url)
        # The key, when there is one, is what is sent: httpx would otherwise replace it by the URL's user:password.
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=url, headers=headers, auth=None if api_key else url_auth, timeout=timeout_s
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _model_name(self) -> str:
        if self.model:
            return self.model
        response = await self._client.get("/models")  # our server and vLLM name what they serve
        if response.status_code >= 400:
            raise UpstreamStatus(response.status_code, response.text)
        self.model = str(response.json()["data"][0]["id"])
        return self.model

    async def _one(self, model: str, messages: list[dict[str, str]], params: SamplingParams) -> Candidate:
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            body["stop"] = params.stop
        if params.seed is not None:
            body["seed"] = params.seed
        response = await self._client.post("/chat/completions", json=body)
        if response.status_code >= 400:
            raise UpstreamStatus(response.status_code, response.text)
        data = response.json()
        choice = data["choices"][0]
        return Candidate(
            choice["message"]["content"] or "", model, data.get("model") or model, choice.get("finish_reason")
        )

    async def chat(self, messages: list[dict[str, str]], n: int, params: SamplingParams) -> ChatOutcome:
        timed_out = False
        outcome = ChatOutcome()
        try:
            model = await self._model_name()
        except (httpx.HTTPError, UpstreamStatus, KeyError, IndexError, TypeError, ValueError) as error:
            timed_out = isinstance(error, httpx.TimeoutException)
            log.error("chat provider %s: GET /models failed: %s", self.shown_url, failure_detail(error))
            outcome.errors.append(f"{self.shown_url}: cannot tell which model it serves: {failure_reason(error)}")
            return raise_if_all_failed(outcome, self.name, timed_out)
        results = await asyncio.gather(*(self._one(model, messages, params) for _ in range(n)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                timed_out = timed_out or isinstance(result, httpx.TimeoutException)
                log.error("chat provider %s failed: %s", self.shown_url, failure_detail(result))
                outcome.errors.append(f"{self.shown_url}: {failure_reason(result)}")
            else:
                outcome.candidates.append(result)
        return raise_if_all_failed(outcome, self.name, timed_out and not outcome.candidates)
