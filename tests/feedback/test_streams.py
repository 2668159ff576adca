"""Feedback read back on both backends: every kind merged into prompt groups, in prompt order."""

from __future__ import annotations

import asyncio
from typing import Any

from llm_feedback_loop.feedback.filters import FeedbackFilter
from llm_feedback_loop.feedback.rows import common_values
from llm_feedback_loop.feedback.streams import iter_prompt_groups
from llm_feedback_loop.storage.tables import Comparison, Correction, Rating
from tests.feedback.rows import migrated_writer, rating


def test_prompt_groups_merge_all_kinds_in_prompt_order(database_url: str) -> None:
    async def run() -> list[Any]:
        async with migrated_writer(database_url) as (engine, writer):
            for prompt in ["alpha", "beta", "gamma"]:
                await writer.insert(Rating, rating(prompt))
            await writer.insert(Rating, rating("beta", "second", "down", annotator="ana"))
            base = common_values([{"role": "user", "content": "beta"}], None, None)
            await writer.insert(
                Comparison,
                base
                | {
                    "responses": [{"text": "x"}, {"text": "y"}],
                    "ranking": [1, 0],
                    "best_index": 1,
                    "comment": None,
                    "model": None,
                },
            )
            delta = common_values([{"role": "user", "content": "delta"}], None, None)
            await writer.insert(
                Correction,
                delta
                | {
                    "original_response": "a",
                    "corrected_response": "b",
                    "model": None,
                    "comment": None,
                    "generation_id": None,
                },
            )
            everything = [g async for g in iter_prompt_groups(engine, FeedbackFilter())]
            by_ana = [g async for g in iter_prompt_groups(engine, FeedbackFilter(annotator="ana"))]
            return [everything, by_ana]

    everything, by_ana = asyncio.run(run())
    assert [g.prompt_hash for g in everything] == sorted(g.prompt_hash for g in everything)
    by_prompt = {g.prompt: g for g in everything}
    assert set(by_prompt) == {"alpha", "beta", "gamma", "delta"}
    beta = by_prompt["beta"]
    assert [r.response for r in beta.ratings] == ["r", "second"]
    assert beta.comparisons[0].responses == ["x", "y"]
    assert by_prompt["delta"].corrections[0].corrected == "b"
    assert [(g.prompt, [r.response for r in g.ratings]) for g in by_ana] == [("beta", ["second"])]
