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
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MIN_UNITS = 3  # the repeated answer has at least this many copies of its first unit


def is_list(text: str) -> bool:
    """At least two of the text's lines are marked as list items ("1. ", "2) ", "- ", "* ", "• ")."""
    return sum(ITEM_MARK.match(line) is not None for line in text.splitlines()) >= 2


def repeated(text: str) -> str | None:
    """`text` with its first unit repeated in place of every other, at least MIN_UNITS times. A text of
    several lines: its first list item (or first line, in a text with no list) in place of the lines after it,
    each keeping its own list marker, lines added after the last numbered on (or marked as the first); lines
    before the first item are kept. One line: its first sentence. Repeats stop once the result is twice as long
    as the text, so a long first unit among many short ones costs linear, not quadratic, space. None when that
    changes nothing (an empty text, or one that already repeats)."""
    stripped = text.strip()
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    if len(lines) >= 2:
        start = next((index for index, line in enumerate(lines) if ITEM_MARK.match(line)), 0)
        kept, items = lines[:start], lines[start:]
        head = ITEM_MARK.match(items[0])
        first = ITEM_MARK.sub("", items[0], count=1)

        def unit(index: int) -> str:
            mark = ITEM_MARK.match(items[index]) if index < len(items) else None
            if mark is not None:
                return mark.group(0) + first
            if index >= len(items) and head is not None:
                return (f"{index + 1}. " if NUMBERED.match(items[0]) else head.group(0)) + first
            return first

        result = "\n".join(kept + within(unit, len(items), 2 * len(stripped)))
    else:
        sentences = [sentence for sentence in SENTENCE_END.split(stripped) if sentence]
        if not sentences:
            return None
        result = " ".join(within(lambda _: sentences[0], len(sentences), 2 * len(stripped)))
    return None if result in (stripped, "\n".join(lines)) else result


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
