"""The generation engine's interface over an OpenAI-compatible server that takes prompts as token ids:
how `llmfl serve-model --engine vllm` serves through vLLM (`serving/vllm.py` starts the vLLM server).

The prompt is tokenized here, with the model's own tokenizer and chat template, exactly as the in-process
engine does, and sent as token ids to `POST /v1/completions`: the same request gives the same prompt whichever
engine serves it. The server does the rest (batching, sampling, seeds, stop strings) and streams the text
back; the token count of an answer is the server's `usage`. Our routes stay on top (`/generate`,
`/admin/reload`, the API keys), so a client cannot tell the engines apart but by their speed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from llm_feedback_loop.serving.engine import Delta, GenerationError, PromptsAndCompletions, SamplingParams


class RemoteEngine(PromptsAndCompletions):
    """Generation by the server at `base_url`, which serves the model as `served_name` (prompts, the context
    check and whole answers as the in-process engine's: `PromptsAndCompletions`)."""

    def __init__(
        self,
        base_url: str,
        served_name: str,
        tokenizer: Any,
        context_length: int,
        vocab_size: int,
        *,
        api_key: str | None = None,
        on_stop: Callable[[], None] | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.served_name = served_name
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.vocab_size = vocab_size
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._on_stop = on_stop
        self._timeout = httpx.Timeout(timeout_s, connect=10.0)
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {}
        self.in_flight = 0

    def start(self) -> None:
        """Nothing to start here: the server is up (see serving/vllm.py)."""

    def stop(self) -> None:
        """Stop the server this engine was given (its `on_stop`); its connections close with their loops."""
        self._clients.clear()
        if self._on_stop is not None:
            self._on_stop()

    def _client(self) -> httpx.AsyncClient:
        """One client (and its pooled connections) per event loop: an httpx client belongs to the loop it was
        made in."""
        loop = asyncio.get_running_loop()
        found = self._clients.get(id(loop))
        if found is None or found[0] is not loop:
            client = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=self._timeout)
            self._clients[id(loop)] = (loop, client)
            return client
        return found[1]

    # ---- generation ----------------------------------------------------------------------------------------
    def request_body(self, input_ids: list[int], params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.served_name,
            "prompt": input_ids,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = params.stop
        if params.seed is not None and params.temperature > 0:  # a greedy answer has no use for one
            body["seed"] = params.seed
        return body

    async def stream(self, input_ids: list[int], params: SamplingParams) -> AsyncIterator[Delta]:
        """Text as the server streams it; the last delta carries the finish reason and the token count."""
        self.check_fits(input_ids, params.max_tokens)
        self.in_flight += 1
        try:
            finish, tokens, chunks = None, None, 0
            try:
                async with self._client().stream(
                    "POST", "/v1/completions", json=self.request_body(input_ids, params)
                ) as response:
                    if response.status_code >= 400:
                        detail = (await response.aread()).decode("utf-8", "replace")[:500]
                        raise GenerationError(f"the model server answered {response.status_code}: {detail}")
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[len("data:") :].strip()
                        if data == "[DONE]":
                            break
                        chunk = json.loads(data)
                        usage = chunk.get("usage") or {}
                        if isinstance(usage.get("completion_tokens"), int):
                            tokens = usage["completion_tokens"]
                        for choice in chunk.get("choices") or []:
                            finish = choice.get("finish_reason") or finish
                            if choice.get("text"):
                                chunks += 1
                                yield Delta(choice["text"], None, tokens if tokens is not None else chunks)
            except httpx.HTTPError as error:
                raise GenerationError(f"the model server at {self.base_url} failed: {error}") from None
            except json.JSONDecodeError as error:
                unreadable = f"the model server at {self.base_url} sent an unreadable event: {error}"
                raise GenerationError(unreadable) from None
            yield Delta("", finish or "length", tokens if tokens is not None else chunks)
        finally:
            self.in_flight -= 1
