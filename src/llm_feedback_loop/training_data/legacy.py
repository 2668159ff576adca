"""The original project's two exports, line for line (its NestJS `JSON.stringify` output)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any


def js_json(value: Any) -> str:
    """JSON as JavaScript's JSON.stringify writes it: no spaces, non-ASCII kept as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def legacy_sft_line(prompt: str, response: str) -> str:
    """`GET /feedback/export`: one line per upvoted rating."""
    return js_json({"prompt": prompt, "completion": response})


def legacy_dpo_lines(
    prompt: str, texts: list[str], ranking: list[int] | None, best_index: int | None, max_pairs: int | None = None
) -> Iterable[str]:
    """`GET /rlhf-feedback/export`: every ordered pair of the ranking (best first), or best vs each other
    response when only `bestIndex` was given; at most `max_pairs` of them (the first ones) when given."""
    lines = _legacy_dpo_lines(prompt, texts, ranking, best_index)
    return lines if max_pairs is None else islice(lines, max_pairs)


def _legacy_dpo_lines(
    prompt: str, texts: list[str], ranking: list[int] | None, best_index: int | None
) -> Iterator[str]:
    if ranking:
        for i in range(len(ranking)):
            for j in range(i + 1, len(ranking)):
                yield js_json({"prompt": prompt, "chosen": texts[ranking[i]], "rejected": texts[ranking[j]]})
    elif best_index is not None:
        for other in range(len(texts)):
            if other != best_index:
                yield js_json({"prompt": prompt, "chosen": texts[best_index], "rejected": texts[other]})
