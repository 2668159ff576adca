"""The built-in objective of `llmfl demo`: people prefer short, direct answers.

An answer complies when it is a single sentence of at most 15 words on one line ("The capital of Peru is
Lima." complies; a paragraph about Peru does not). SmolLM2-135M-Instruct complies with about a third of
its sampled answers to these questions, so a round's candidates usually differ and the annotator's
rankings carry a signal.

Brevity alone is easy to game: an empty, nonsensical or wrong answer is short. The simulated annotator
therefore likes an answer only when it is short, coherent and right (`preferred`), as the person who asked
would: "3 + 22 = 4" is short and names the question's numbers, and nobody who asked likes it. The evaluation
reports coherence beside the score (the promotion rule refuses a candidate whose coherence falls). An answer
counts as coherent only when it is on topic (it names the question's subject or its expected answer) and not
degenerate (mostly letters, digits and ordinary punctuation; not repeating itself). `correct` (the expected
answer appears) is reported too, so that nobody mistakes a gain in style for a gain in knowledge.

Liking short wrong answers taught the model to write them: in a second round of mostly sums, 37 of the 49
training pairs liked a wrong answer ("23 + 2 = 4."), and the candidate's sampled answers lost 6 points of
coherence, most of it to wrong sums.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from llm_feedback_loop.objectives.base import Objective

MAX_WORDS = 15
WRITING = set(".,;:!?'\"()-+=*/%")  # punctuation and arithmetic signs of ordinary answers


@dataclass(frozen=True)
class Question:
    prompt: str
    topic: tuple[str, ...]  # words of the question an on-topic answer names (any of them)
    answer: tuple[str, ...]  # accepted forms of the expected answer


CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Canada", "Ottawa"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo"),
    ("Indonesia", "Jakarta"), ("Portugal", "Lisbon"), ("Greece", "Athens"), ("Chile", "Santiago"),
    ("Russia", "Moscow"), ("China", "Beijing"), ("India", "New Delhi"), ("Mexico", "Mexico City"),
    ("Argentina", "Buenos Aires"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Poland", "Warsaw"),
    ("Austria", "Vienna"), ("Ireland", "Dublin"), ("Cuba", "Havana"), ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"), ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Hungary", "Budapest"),
    ("Belgium", "Brussels"), ("the Netherlands", "Amsterdam"), ("Denmark", "Copenhagen"), ("Australia", "Canberra"),
    ("South Korea", "Seoul"), ("the Philippines", "Manila"), ("Pakistan", "Islamabad"), ("Bangladesh", "Dhaka"),
    ("Saudi Arabia", "Riyadh"), ("Iraq", "Baghdad"), ("Morocco", "Rabat"), ("Nigeria", "Abuja"), ("Ghana", "Accra"),
    ("Ethiopia", "Addis Ababa"), ("Venezuela", "Caracas"), ("Uruguay", "Montevideo"), ("New Zealand", "Wellington"),
    ("Croatia", "Zagreb"), ("Serbia", "Belgrade"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"),
    ("Lebanon", "Beirut"), ("Syria", "Damascus"), ("Afghanistan", "Kabul"), ("Nepal", "Kathmandu"),
    ("Senegal", "Dakar"), ("Algeria", "Algiers"), ("Uganda", "Kampala"), ("Qatar", "Doha"), ("Latvia", "Riga"),
    ("Lithuania", "Vilnius"), ("Estonia", "Tallinn"), ("Ecuador", "Quito"), ("Jamaica", "Kingston"),
]  # fmt: skip
LANGUAGES = [
    ("France", "French"), ("Germany", "German"), ("Italy", "Italian"), ("Brazil", "Portuguese"),
    ("Japan", "Japanese"), ("Russia", "Russian"), ("Mexico", "Spanish"), ("Egypt", "Arabic"),
    ("Greece", "Greek"), ("Sweden", "Swedish"), ("Poland", "Polish"), ("Turkey", "Turkish"),
    ("the Netherlands", "Dutch"), ("Denmark", "Danish"), ("Finland", "Finnish"), ("Norway", "Norwegian"),
    ("Hungary", "Hungarian"), ("Thailand", "Thai"), ("Vietnam", "Vietnamese"), ("South Korea", "Korean"),
    ("Israel", "Hebrew"), ("Argentina", "Spanish"), ("Austria", "German"), ("Romania", "Romanian"),
    ("Ukraine", "Ukrainian"), ("Indonesia", "Indonesian"), ("Iran", "Persian"),
]  # fmt: skip
COLOURS = [
    ("the sky on a clear day", "blue"), ("fresh grass", "green"), ("snow", "white"), ("a ripe banana", "yellow"),
    ("coal", "black"), ("a ripe tomato", "red"), ("milk", "white"), ("a lemon", "yellow"), ("blood", "red"),
    ("a carrot", "orange"), ("a lime", "green"), ("a crow", "black"), ("a polar bear", "white"), ("a flamingo", "pink"),
    ("a pumpkin", "orange"), ("a fire truck", "red"), ("a swan", "white"), ("a cucumber", "green"),
]  # fmt: skip
LEGS = [
    ("spider", "8", "eight"), ("dog", "4", "four"), ("chicken", "2", "two"), ("ant", "6", "six"),
    ("cat", "4", "four"), ("horse", "4", "four"), ("duck", "2", "two"), ("beetle", "6", "six"),
    ("cow", "4", "four"), ("goat", "4", "four"), ("pig", "4", "four"), ("sheep", "4", "four"), ("lion", "4", "four"),
    ("goose", "2", "two"), ("parrot", "2", "two"), ("bee", "6", "six"), ("mosquito", "6", "six"),
    ("scorpion", "8", "eight"), ("tick", "8", "eight"),
]  # fmt: skip
OPPOSITES = [
    ("hot", "cold"), ("up", "down"), ("big", "small"), ("day", "night"), ("fast", "slow"), ("light", "dark"),
    ("open", "closed"), ("wet", "dry"), ("happy", "sad"), ("early", "late"), ("full", "empty"), ("hard", "soft"),
    ("tall", "short"), ("young", "old"), ("thick", "thin"), ("rich", "poor"), ("loud", "quiet"), ("strong", "weak"),
    ("clean", "dirty"), ("heavy", "light"), ("push", "pull"), ("inside", "outside"), ("north", "south"),
    ("true", "false"), ("buy", "sell"), ("left", "right"), ("win", "lose"), ("cheap", "expensive"),
]  # fmt: skip
TOOLS = [  # (a tool, words of its use: any of them, "|" between)
    ("a thermometer", "temperature"), ("a compiler", "code"), ("a database", "data"), ("a web browser", "web"),
    ("a refrigerator", "cold"), ("a microscope", "small"), ("a clock", "time"), ("a camera", "photo"),
    ("a calculator", "calculates|calculations|numbers|arithmetic|math"), ("a telescope", "distant"),
    ("a dictionary", "words|meanings|definitions"), ("a map", "places"), ("an umbrella", "rain"),
    ("a ruler", "length|lengths|measures|distance"), ("a kettle", "water|boils|boil"), ("a toothbrush", "teeth"),
    ("a washing machine", "clothes"), ("a dishwasher", "dishes"), ("a lamp", "light"), ("a printer", "paper"),
    ("a fan", "air|cools|cool"), ("an oven", "food|bakes|cooks|heats"), ("a freezer", "frozen|freezes|cold"),
]  # fmt: skip


def questions() -> list[Question]:
    """Every question, the kinds spread evenly through the list (in proportion to their numbers), so that each
    round's stretch of feedback prompts asks some of every kind."""
    kinds = [
        [Question(f"What is the capital of {c}?", (c.removeprefix("the "),), (city,)) for c, city in CAPITALS],
        [
            Question(f"What language is spoken in {c}?", (c.removeprefix("the "),), (language,))
            for c, language in LANGUAGES
        ],
        [Question(f"What colour is {thing}?", (thing.split()[-1],), (colour,)) for thing, colour in COLOURS],
        [Question(f"How many legs does a {animal} have?", (animal,), (n, word)) for animal, n, word in LEGS],
        [Question(f"What is the opposite of {word}?", (word,), (other,)) for word, other in OPPOSITES],
        [Question(f"What does {tool} do?", (tool.split()[-1],), tuple(use.split("|"))) for tool, use in TOOLS],
        [
            Question(f"What is {a} plus {b}?", (str(a), str(b)), (str(a + b),))
            for a, b in ((a, b) for a in range(3, 40, 4) for b in range(2, 40, 5))
        ],
    ]
    placed = [((i + 0.5) / len(kind), k, q) for k, kind in enumerate(kinds) for i, q in enumerate(kind)]
    return [question for _, _, question in sorted(placed, key=lambda item: item[:2])]


QUESTIONS = {question.prompt: question for question in questions()}


def held_out(prompt: str) -> bool:
    """One prompt in four is kept for evaluation, fixed by a hash of its text."""
    return hashlib.sha256(prompt.encode("utf-8")).digest()[0] % 4 == 0


def words(answer: str) -> list[str]:
    return re.findall(r"[\w'-]+", answer)


def sentence_count(answer: str) -> int:
    return len([part for part in re.split(r"[.!?]+(?:\s+|$)|\n+", answer.strip()) if part.strip()])


def score(prompt: str, answer: str) -> float:
    """1 for a single sentence of at most MAX_WORDS words on one line, else 0."""
    text = answer.strip()
    return float(bool(text) and "\n" not in text and sentence_count(text) == 1 and len(words(text)) <= MAX_WORDS)


def degenerate(answer: str) -> bool:
    text = answer.strip()
    if not text:
        return True
    visible = [c for c in text if not c.isspace()]
    if sum(c.isalnum() or c in WRITING for c in visible) < 0.8 * len(visible):
        return True
    tokens = [w.lower() for w in words(text)]
    return len(tokens) >= 8 and len(set(tokens)) < 0.5 * len(tokens)


def mentions(answer: str, terms: tuple[str, ...]) -> bool:
    lowered = answer.lower()
    return any(re.search(rf"(?<!\w){re.escape(term.lower())}(?!\w)", lowered) for term in terms)


def coherent(prompt: str, answer: str) -> bool:
    """Not degenerate, and names the question's subject or its expected answer."""
    question = QUESTIONS.get(prompt)
    if degenerate(answer):
        return False
    return question is None or mentions(answer, question.topic + question.answer)


def preferred(prompt: str, answer: str) -> float:
    """What the simulated annotator goes by: a short answer that is also coherent and right. Brevity alone
    would reward short nonsense or a short wrong sum, and the model learns to write them."""
    return score(prompt, answer) * coherent(prompt, answer) * correct(prompt, answer)


def correct(prompt: str, answer: str) -> float:
    question = QUESTIONS.get(prompt)
    return float(question is not None and mentions(answer, question.answer))


TASK = Objective(
    name="concise",
    description=f"Answers are a single sentence of at most {MAX_WORDS} words.",
    train_prompts=[q.prompt for q in QUESTIONS.values() if not held_out(q.prompt)],
    eval_prompts=[q.prompt for q in QUESTIONS.values() if held_out(q.prompt)],
    score=score,
    coherent=coherent,
    measures={"correct": correct},
    preference=preferred,
)
