"""The key every stored row is grouped by: a conversation's messages and their stable hash.

It lives in the lowest layer that needs it (the feedback store, the annotation queue, the exports and the API
all group by it)."""

from __future__ import annotations

import hashlib
import json

Message = dict[str, str]


def prompt_messages_from_text(prompt: str) -> list[Message]:
    return [{"role": "user", "content": prompt}]


def prompt_hash(messages: list[Message]) -> str:
    """A stable id of a conversation: the same messages always give the same hash."""
    canonical = json.dumps(
        [{"role": m["role"], "content": m["content"]} for m in messages],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
