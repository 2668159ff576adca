"""Write synthetic feedback in the original project's format (JSON Lines), for demos and benchmarks.

The annotators here prefer answers that are complete sentences over curt fragments: each prompt gets a
thumbs-up on the complete answer and a comparison ranking it above the curt one.

    python examples/style_feedback.py --prompts 80 > feedback.jsonl && llmfl import feedback.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys

FACTS = [
    (
        "What is the capital of {}?",
        "The capital of {} is {}.",
        "{}",
        [
            ("France", "Paris"),
            ("Germany", "Berlin"),
            ("Japan", "Tokyo"),
            ("Italy", "Rome"),
            ("Spain", "Madrid"),
            ("Canada", "Ottawa"),
            ("Egypt", "Cairo"),
            ("Kenya", "Nairobi"),
            ("Peru", "Lima"),
            ("Norway", "Oslo"),
            ("Indonesia", "Jakarta"),
            ("Portugal", "Lisbon"),
            ("Greece", "Athens"),
            ("Chile", "Santiago"),
        ],
    ),
    (
        "What colour is {}?",
        "{} is usually {}.",
        "{}",
        [
            ("the sky on a clear day", "blue"),
            ("fresh grass", "green"),
            ("snow", "white"),
            ("a ripe banana", "yellow"),
            ("coal", "black"),
            ("a ripe tomato", "red"),
            ("an orange", "orange"),
            ("milk", "white"),
        ],
    ),
    ("What is {} plus {}?", "{} plus {} equals {}.", "{}", None),
    (
        "What does {} do?",
        "{} {}.",
        "{}",
        [
            ("Kubernetes", "orchestrates containers across a cluster of machines"),
            ("Docker", "packages applications and their dependencies into containers"),
            ("a compiler", "translates source code into machine code"),
            ("a database", "stores data and answers queries about it"),
            ("a web browser", "fetches web pages and displays them"),
            ("a thermometer", "measures temperature"),
        ],
    ),
]


def pairs(count: int, seed: int) -> list[tuple[str, str, str]]:
    """(prompt, complete answer, curt answer), `count` distinct prompts, deterministic for a seed: every
    listed fact once (shuffled), then sums."""
    rng = random.Random(seed)
    out: list[tuple[str, str, str]] = []
    for question, complete, curt, items in FACTS:
        for subject, answer in items or []:
            full = complete.format(subject, answer)
            out.append((question.format(subject), full[0].upper() + full[1:], curt.format(answer)))
    rng.shuffle(out)
    sums = [(a, b) for a in range(1, 40) for b in range(1, 40)]
    rng.shuffle(sums)
    question, complete, curt, _ = FACTS[2]
    out += [(question.format(a, b), complete.format(a, b, a + b), curt.format(a + b)) for a, b in sums]
    return out[:count]


def documents(count: int, seed: int) -> list[dict]:
    rows: list[dict] = []
    for prompt, complete, curt in pairs(count, seed):
        rows.append({"prompt": prompt, "response": complete, "rating": "up", "model": "SmolLM2-135M-Instruct"})
        rows.append(
            {
                "prompt": prompt,
                "responses": [{"id": "1", "text": curt}, {"id": "2", "text": complete}],
                "ranking": [1, 0],
                "comment": "The complete sentence is better.",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for document in documents(args.prompts, args.seed):
        sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
