"""Annotators' scores for loop tests on the tiny model, whose random answers the demo's task cannot tell apart."""

import zlib


def by_length(prompt: str, answer: str) -> float:
    """Longer answers score higher (distinct lengths give a strict ranking)."""
    return min(1.0, len(answer) / 60)


def alike(prompt: str, answer: str) -> float:
    return 1.0


def some_prompts(prompt: str, answer: str) -> float:
    """Answers told apart on about half the prompts (those whose CRC-32 leaves 0 or 1 divided by 4), by a hash of
    their text, so which prompts give a signal does not depend on the answers a machine's arithmetic samples;
    every answer to the other prompts is judged alike."""
    if zlib.crc32(prompt.encode()) % 4 >= 2:
        return 1.0
    return zlib.crc32(answer.encode()) / 2**32
