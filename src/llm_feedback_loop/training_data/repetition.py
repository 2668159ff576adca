"""Repetition pairs: a list the annotator liked, preferred to the same list with its first item repeated in
place of the others.

A small chat model's greedy answers can repeat one item of a list until the token limit ("1. Bread is a
staple food.\n2. Bread is a staple food.\n3. ..."); DPO on a round's feedback makes a model surer of the form
the annotators liked, and with it of such loops, while the round's sampled answers seldom show one for the
annotators to dislike (SmolLM2-135M-Instruct: none of 14 sampled lists, 3 of 7 greedy ones). A person who
liked a list would not like it repeated, so each prompt of an export's training side whose liked answer is a
list (`is_list`) can carry one such pair (`ExportOptions.repetition_pairs`, on in `llmfl loop`). They are built
from the feedback's own liked answers, never from the held-out side: early stopping and the loop's held-out
check judge the annotators' pairs alone. The manifest counts them as the source `repetition`.

Lists only: on one fixed round of `bullets` (lists) the pairs kept every greedy answer as coherent as the
base's (88.1% against 83.3% without, the same gain), but on one of `specific` (paragraphs) pairs of a repeated
first sentence took its greedy gain from +23.8 to +14.3 points and its sampled gain from +13.1 to +4.8, even
with 18 of its 50 pairs kept (bench/bench_recipes.py; README: the loop).
"""

from __future__ import annotations

import re
from collections.abc import Callable

ITEM_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
NUMBERED = re.compile(r"^\s*\d+[.)]\s+")
MIN_UNITS = 3  # the repeated list has at least this many copies of its first item


def is_list(text: str) -> bool:
    """At least two of the text's lines are marked as list items ("1. ", "2) ", "- ", "* ", "• ")."""
    return sum(ITEM_MARK.match(line) is not None for line in text.splitlines()) >= 2


def repeated(text: str) -> str | None:
    """The list in `text` with its first item in place of every other item, each keeping its own list marker,
    at least MIN_UNITS times (items added after the last numbered on, or marked as the first); lines before the
    first item are kept. Repeats stop once the result is twice as long as the text, so a long first item among
    many short ones costs linear, not quadratic, space. None for a text that is not a list (`is_list`) or that
    already repeats."""
    if not is_list(text):
        return None
    stripped = text.strip()
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    start, head = next((index, mark) for index, line in enumerate(lines) if (mark := ITEM_MARK.match(line)))
    kept, items = lines[:start], lines[start:]
    first = items[0][head.end() :]

    def unit(index: int) -> str:
        mark = ITEM_MARK.match(items[index]) if index < len(items) else None
        if mark is not None:
            return mark.group(0) + first
        if index >= len(items):
            return (f"{index + 1}. " if NUMBERED.match(items[0]) else head.group(0)) + first
        return first  # a line inside the list that is not an item

    result = "\n".join(kept + within(unit, len(items), 2 * len(stripped)))
    return None if result == "\n".join(lines) else result


def within(unit: Callable[[int], str], count: int, budget: int) -> list[str]:
    """unit(0), unit(1), ...: `count` of them (at least MIN_UNITS), fewer once their length passes `budget`."""
    units: list[str] = []
    length = 0
    for index in range(max(MIN_UNITS, count)):
        if index >= MIN_UNITS and length > budget:
            break
        units.append(unit(index))
        length += len(units[-1]) + 1
    return units
