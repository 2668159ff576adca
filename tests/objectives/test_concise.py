"""The demo's objective: its score, coherence and correctness on fixed answers, and how objectives are loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_feedback_loop.objectives.base import LoopTask, Objective, ObjectiveError, load_objective, load_scorer
from llm_feedback_loop.objectives.concise import TASK, coherent, correct, preferred, score

CAPITAL = "What is the capital of Peru?"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("The capital of Peru is Lima.", 1.0),
        ("Lima", 1.0),
        ("19 + 27 = 46", 1.0),  # a number with no full stop is still one sentence
        ("It is 3.5 metres long.", 1.0),  # a decimal point does not end a sentence
        ("The capital of Peru is Lima. It lies on the coast.", 0.0),  # two sentences
        ("The capital of Peru is Lima\nIt lies on the coast", 0.0),  # two lines
        ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen.", 1.0),
        ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen.", 0.0),
        ("", 0.0),
        ("   ", 0.0),
    ],
)
def test_score_is_one_sentence_of_at_most_15_words(answer: str, expected: float) -> None:
    assert score(CAPITAL, answer) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("The capital of Peru is Lima.", True),
        ("Lima.", True),  # names the expected answer
        ("Peru is a country in South America.", True),  # on topic, though not the answer
        ("The weather is nice today.", False),  # off topic
        ("", False),
        ("!!!! ???? .... ----", False),  # not words
        ("@@## Peru $$^^ ~~", False),  # mostly symbols
        ("Lima: 9 + 1 = 10.", True),  # arithmetic signs are ordinary writing
        ("Peru Peru Peru Peru Peru Peru Peru Peru Peru Peru", False),  # repeats itself
    ],
)
def test_coherence_needs_words_on_topic(answer: str, expected: bool) -> None:
    assert coherent(CAPITAL, answer) is expected


def test_correct_looks_for_the_expected_answer() -> None:
    assert correct(CAPITAL, "The capital of Peru is Lima.") == 1.0
    assert correct(CAPITAL, "The capital of Peru is Cusco.") == 0.0
    assert correct("How many legs does a spider have?", "A spider has eight legs.") == 1.0
    assert correct("What is 3 plus 2?", "3 plus 2 equals 5.") == 1.0
    assert correct("What is 3 plus 2?", "3 plus 2 equals 15.") == 0.0  # "5" inside "15" is not the answer
    assert correct("What is 3 plus 2?", "3 plus 2 equals 50.") == 0.0
    assert correct(CAPITAL, "Limas are beans.") == 0.0
    assert correct("What does a calculator do?", "It calculates sums.") == 1.0  # any of a tool's uses
    assert correct("What does a calculator do?", "It is a small box.") == 0.0
    assert coherent("What is the capital of the Netherlands?", "The Netherlands' capital.")  # "the" not needed


def test_held_out_prompts_are_fixed_and_apart_from_the_feedback_prompts() -> None:
    assert len(TASK.eval_prompts) >= 60  # one answer moves the held-out figures by under 2 points
    assert not set(TASK.eval_prompts) & set(TASK.train_prompts)
    assert load_objective("concise").eval_prompts == TASK.eval_prompts


def test_rounds_take_new_prompts_in_turn() -> None:
    first, second = TASK.round_prompts(1, 50), TASK.round_prompts(2, 50)
    assert len(first) == len(second) == 50
    assert not set(first) & set(second)
    assert len(TASK.round_prompts(1, 10_000)) == len(TASK.train_prompts)


def test_a_round_asks_every_kind_of_question_in_proportion() -> None:
    kinds = ("What is the capital", "What language", "What colour", "How many legs", "What is the opposite")
    kinds += ("What does", "plus")

    def kind(prompt: str) -> str:
        return next(k for k in kinds if prompt.startswith(k) or (k == "plus" and k in prompt))

    first = [kind(prompt) for prompt in TASK.round_prompts(1, 85)]  # the first pass of a round (defaults)
    assert set(first) == set(kinds)
    share = sum(kind(prompt) == "plus" for prompt in TASK.train_prompts) / len(TASK.train_prompts)
    assert abs(first.count("plus") / len(first) - share) < 0.1


@pytest.mark.parametrize("name", ["Objective", "LoopTask"])  # LoopTask: the earlier name, in users' files
def test_an_objective_of_ones_own_from_a_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / "mine.py"
    path.write_text(
        f"from llm_feedback_loop.objectives.base import {name}\n"
        "def polite(prompt, answer):\n    return float('please' in answer.lower())\n"
        f"TASK = {name}('polite', 'Says please.', ['Pass the salt.'], ['Open the door.'], polite)\n"
    )
    objective = load_objective(f"{path}:TASK")
    assert objective.name == "polite" and isinstance(objective, Objective) and LoopTask is Objective
    assert load_scorer(f"{path}:polite")("x", "Please do.") == 1.0
    assert load_scorer("concise")("x", "Yes.") == 1.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", "MODULE:NAME"),
        ("no_such_module_here:TASK", "cannot import"),
        ("llm_feedback_loop.objectives.concise:NOPE", "has no NOPE"),
        ("llm_feedback_loop.objectives.concise:MAX_WORDS", "not an Objective"),
        ("/no/such/file.py:TASK", "does not exist"),
    ],
)
def test_bad_objective_names_are_explained(spec: str, message: str) -> None:
    with pytest.raises(ObjectiveError, match=message):
        load_objective(spec)


def test_an_objective_must_hold_out_prompts_it_does_not_train_on() -> None:
    with pytest.raises(ObjectiveError, match="must not be among"):
        Objective("t", "d", ["a", "b"], ["b"], score)


def test_the_simulated_annotator_does_not_like_short_nonsense() -> None:
    assert preferred(CAPITAL, "The capital of Peru is Lima.") == 1.0
    assert preferred(CAPITAL, "Bananas are yellow.") == 0.0  # short, but off topic
    assert preferred(CAPITAL, "Peru is a country. Its capital is Lima, on the coast.") == 0.0  # on topic, too long
    assert TASK.prefers(CAPITAL, "Bananas are yellow.") == 0.0 and TASK.score(CAPITAL, "Bananas are yellow.") == 1.0


def test_the_simulated_annotator_does_not_like_a_short_wrong_answer() -> None:
    """A short answer that names the question's numbers is on topic, and still wrong: nobody who asked likes it."""
    assert score("What is 3 plus 22?", "3 + 22 = 4") == 1.0 and coherent("What is 3 plus 22?", "3 + 22 = 4")
    assert preferred("What is 3 plus 22?", "3 + 22 = 4") == 0.0
    assert preferred("What is 3 plus 22?", "3 + 22 = 25.") == 1.0
    assert preferred(CAPITAL, "The capital of Peru is Cusco.") == 0.0


def test_objective_files_written_with_the_earlier_names_still_load(tmp_path, monkeypatch) -> None:
    """`from llm_feedback_loop.loop.tasks import LoopTask` (the README of earlier releases) keeps working."""
    from llm_feedback_loop.objectives.base import Objective, load_objective

    (tmp_path / "my_tasks.py").write_text(
        "from llm_feedback_loop.loop.tasks import LoopTask\n"
        "from llm_feedback_loop.loop.concise import TASK as BUILT_IN\n"
        "assert isinstance(BUILT_IN, LoopTask)\n"
        "TASK = BUILT_IN\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    assert isinstance(load_objective("my_tasks.py:TASK"), Objective)
    assert load_objective("llm_feedback_loop.loop.concise:TASK").name == "concise"
