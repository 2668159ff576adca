"""Which provider answers a chat request, per the settings and the request's `provider`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from llm_feedback_loop.chat.providers import ChatProvider, LocalProvider, OpenAICompatibleProvider
from llm_feedback_loop.serving.slot import ModelSlot
from llm_feedback_loop.settings import Settings, remote_chat_endpoint


class ChatService:
    """`local`: the active model in this process (or LOCAL_INFERENCE_URL, a `llmfl serve-model` that takes
    LOCAL_INFERENCE_API_KEY); anything else: the remote provider if one is configured, else the local model
    as well."""

    def __init__(self, settings: Settings, database: AsyncEngine) -> None:
        self.slot = ModelSlot(
            database, settings.base_model, device=settings.model_device, pack_linear=settings.model_packed_linear
        )
        timeout = settings.chat_timeout_s
        self.local: ChatProvider = (
            OpenAICompatibleProvider(
                "local", settings.local_inference_url, None, settings.local_inference_api_key, timeout
            )
            if settings.local_inference_url
            else LocalProvider(self.slot)
        )
        remote = remote_chat_endpoint(settings)
        self.remote: ChatProvider | None = OpenAICompatibleProvider("remote", *remote, timeout) if remote else None

    def provider(self, asked: str | None) -> ChatProvider:
        if asked == "local" or self.remote is None:
            return self.local
        return self.remote

    async def close(self) -> None:
        for provider in (self.local, self.remote):
            if isinstance(provider, OpenAICompatibleProvider):
                await provider.aclose()
        await self.slot.close()
