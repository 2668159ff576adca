"""Rows of each dataset kind for one prompt's feedback, in TRL's standard or conversational format.

- sft: `{"prompt", "completion"}`: answers voted up overall, corrections, and optionally the best
  answer of each comparison.
- dpo / reward: `{"prompt", "chosen", "rejected"}` from `preferences.preference_pairs_for_group`, at most
  `options.max_pairs_per_prompt` pairs per prompt.
- kto: `{"prompt", "completion", "label"}` from thumbs.

Standard rows hold text (the prompt is the last user turn); conversational rows hold message lists,
so TRL applies the model's own chat template and a conversation's earlier turns are kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm_feedback_loop.feedback.records import PromptGroup
from llm_feedback_loop.training_data.preferences import (
    best_first_order,
    net_votes_by_response,
    preference_pairs_for_group,
)
from llm_feedback_loop.training_data.repetition import repeated

if TYPE_CHECKING:  # options.py reads the kinds table (kinds.py), which holds the row builders below
    from llm_feedback_loop.training_data.options import ExportOptions, RowFormat


@dataclass(frozen=True, slots=True)
class DatasetRow:
    row: dict[str, Any]
    source: str  # "rating" | "comparison" | "correction"


@dataclass(slots=True)
class GroupRows:
    rows: list[DatasetRow]
    ties_dropped: int = 0
    pairs_capped: bool = False  # the prompt had more preference pairs than options.max_pairs_per_prompt


def render_prompt(group: PromptGroup, row_format: RowFormat) -> str | list[dict[str, str]]:
    if row_format == "conversational":
        return [dict(message) for message in group.prompt_messages]
    return group.prompt


def render_answer(text: str, row_format: RowFormat) -> str | list[dict[str, str]]:
    if row_format == "conversational":
        return [{"role": "assistant", "content": text}]
    return text


def sft_completions(group: PromptGroup, dedupe: bool, include_comparisons: bool) -> list[tuple[str, str]]:
    """(completion text, source) pairs for supervised fine-tuning."""
    completions: list[tuple[str, str]] = []
    net = net_votes_by_response(group.ratings)
    if dedupe:
        completions += [(text, "rating") for text, score in net.items() if score > 0]
    else:
        completions += [(r.response, "rating") for r in group.ratings if r.rating == "up" and net[r.response] > 0]
    completions += [(c.corrected, "correction") for c in group.corrections]
    if include_comparisons:
        for comparison in group.comparisons:
            order = best_first_order(comparison)
            if order:
                completions.append((comparison.responses[order[0]], "comparison"))
    if dedupe:
        seen: set[str] = set()
        unique = []
        for text, source in completions:
            if text not in seen:
                seen.add(text)
                unique.append((text, source))
        completions = unique
    return completions


def kto_labels(group: PromptGroup, dedupe: bool) -> tuple[list[tuple[str, bool]], int]:
    """(completion, label) pairs; with dedupe, one per answer by majority vote (ties dropped)."""
    if not dedupe:
        return [(r.response, r.rating == "up") for r in group.ratings], 0
    labels, ties = [], 0
    for text, score in net_votes_by_response(group.ratings).items():
        if score == 0:
            ties += 1
        else:
            labels.append((text, score > 0))
    return labels, ties


def sft_rows(group: PromptGroup, options: ExportOptions) -> GroupRows:
    prompt, fmt = render_prompt(group, options.format), options.format
    completions = sft_completions(group, options.dedupe, options.sft_include_comparisons)
    return GroupRows([DatasetRow({"prompt": prompt, "completion": render_answer(t, fmt)}, s) for t, s in completions])


def kto_rows(group: PromptGroup, options: ExportOptions) -> GroupRows:
    prompt, fmt = render_prompt(group, options.format), options.format
    labels, ties = kto_labels(group, options.dedupe)
    rows = [
        DatasetRow({"prompt": prompt, "completion": render_answer(t, fmt), "label": label}, "rating")
        for t, label in labels
    ]
    return GroupRows(rows, ties)


def pair_rows(group: PromptGroup, options: ExportOptions) -> GroupRows:
    prompt, fmt = render_prompt(group, options.format), options.format
    pairs, ties, capped = preference_pairs_for_group(group, options.strategy, options.seed, options.pair_cap)
    rows = []
    for pair in pairs:
        row = {
            "prompt": prompt,
            "chosen": render_answer(pair.chosen, fmt),
            "rejected": render_answer(pair.rejected, fmt),
        }
        # Without dedupe a pair appears once per vote for it, so agreement weighs in training.
        rows += [DatasetRow(row, pair.source)] * (1 if options.dedupe else pair.votes)
    return GroupRows(rows, ties, capped)


def repetition_row(rows: list[DatasetRow]) -> DatasetRow | None:
    """The first pair's chosen answer preferred to itself repeated (`repetition.repeated`), for a prompt whose
    rows are pairs; None when that answer is not a list (`repetition.is_list`) or cannot be repeated."""
    first = rows[0].row
    chosen = first["chosen"]
    text = chosen if isinstance(chosen, str) else chosen[-1]["content"]
    rejected = repeated(text)
    if rejected is None:
        return None
    answer = render_answer(rejected, "standard" if isinstance(chosen, str) else "conversational")
    return DatasetRow({"prompt": first["prompt"], "chosen": chosen, "rejected": answer}, "repetition")


def prompt_rows(group: PromptGroup, options: ExportOptions) -> GroupRows:
    """The prompt itself, once, whatever feedback it had (or none: answers logged for it): what an online method
    (GRPO, RLOO) samples answers to and scores with its reward. The source: what brought it (the first present)."""
    present = (
        ("rating", group.ratings),
        ("comparison", group.comparisons),
        ("correction", group.corrections),
        ("generation", group.generations),
    )
    source = next((name for name, rows in present if rows), "generation")
    return GroupRows([DatasetRow({"prompt": render_prompt(group, options.format)}, source)])


def rows_for_group(group: PromptGroup, options: ExportOptions) -> GroupRows:
    """Every dataset row of `options.kind` that one prompt's feedback yields (the kind's builder in kinds.py)."""
    from llm_feedback_loop.training_data.kinds import kind_of

    return kind_of(options.kind).build_rows(group, options)


def count_sources(rows: list[DatasetRow]) -> Counter[str]:
    return Counter(row.source for row in rows)
