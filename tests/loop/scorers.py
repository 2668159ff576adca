"""Annotators' scores for loop tests on the tiny model, whose random answers the demo's task cannot tell apart."""


def by_length(prompt: str, answer: str) -> float:
    """Longer answers score higher (distinct lengths give a strict ranking)."""
    return min(1.0, len(answer) / 60)


def alike(prompt: str, answer: str) -> float:
    return 1.0
