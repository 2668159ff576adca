"""A round's feedback, through the service's HTTP API: the same calls the annotate page makes.

1. The active version answers the round's prompts (`POST /v1/chat`; every answer is logged as a generation
   with the version that wrote it): for a simulated annotator in passes that spend the round's budget where
   the answers teach something (`loop/budget.py`), for people `n` answers to each prompt.
2. The prompts and their answers become the round's batch of annotation tasks (`POST /v1/tasks/import`)
   (people only).
3. Annotators judge them: people on the /queue page, or a simulated annotator that posts its thumbs
   and ranking of each prompt's answers (`POST /v1/annotations`), as a person does on the annotate page.

`collect_feedback` is the round's stage; the other functions are its calls to the service.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from llm_feedback_loop.loop import history
from llm_feedback_loop.loop.budget import (
    MORE_BUDGETS,
    first_answers,
    first_pass_prompts,
    following,
    judgement,
    shortfall_budget,
    signal,
    top_ups,
)
from llm_feedback_loop.loop.context import LoopError, LoopRun, Sampling
from llm_feedback_loop.objectives.base import Scorer
from llm_feedback_loop.storage.tables import LoopRound, ModelVersion


class ServiceError(RuntimeError):
    """The service refused or failed a call; the message says which and why."""


def checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise ServiceError(f"{response.request.method} {response.request.url.path}: {response.status_code} {detail}")
    return response.json()


IN_FLIGHT = 32  # answers the loop keeps asking the service for at once, so that it batches them


def generate(
    client: httpx.Client,
    prompts: list[str],
    sampling: Sampling,
    on_done: Callable[[], None] | None = None,
    answers: int | None = None,
    seed_offset: int = 0,
) -> list[tuple[str, list[dict[str, Any]]]]:
    """(prompt, answers) for every prompt, `answers` (default `sampling.n`) each; answers are {"text",
    "generation_id", "model_version"}. Requests run together (IN_FLIGHT answers at once) so the service
    batches them. A seeded sampling seeds each request by its index (plus `seed_offset`)."""
    n = answers or sampling.n

    def one(index: int, prompt: str) -> tuple[str, list[dict[str, Any]]]:
        body: dict[str, Any] = {
            "prompt": prompt,
            "n": n,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed * 100_003 + seed_offset + index
        result = checked(client.post("/v1/chat", json=body))
        if on_done:
            on_done()
        return prompt, [
            {"text": c["text"], "generation_id": c["generation_id"], "model_version": c["model_version"]}
            for c in result["candidates"]
        ]

    with ThreadPoolExecutor(max_workers=max(1, IN_FLIGHT // n)) as pool:
        return list(pool.map(one, range(len(prompts)), prompts))


def import_batch(client: httpx.Client, batch: str, generated: list[tuple[str, list[dict[str, Any]]]]) -> int:
    """Load the prompts with at least two distinct non-empty answers as the batch's tasks (one annotator each)."""
    lines = []
    for prompt, answers in generated:
        kept, seen = [], set()
        for answer in answers:
            text = answer["text"].strip()
            if text and text not in seen:
                seen.add(text)
                kept.append({"text": answer["text"], "generation_id": answer["generation_id"]})
        if len(kept) >= 2:
            lines.append(json.dumps({"prompt": prompt, "answers": kept[:4]}, ensure_ascii=False))
    if not lines:
        raise ServiceError("no prompt got two different answers to compare: nothing to annotate this round")
    response = client.post(
        "/v1/tasks/import",
        params={"annotators": 1, "batch": batch},
        content="\n".join(lines).encode("utf-8"),
        headers={"Content-Type": "application/x-ndjson"},
    )
    return int(checked(response)["loaded"])


def annotate(
    client: httpx.Client,
    generated: list[tuple[str, list[dict[str, Any]]]],
    annotator: str,
    score: Scorer,
    on_done: Callable[[], None] | None = None,
    shuffle: random.Random | None = None,
) -> dict[str, int]:
    """A simulated annotator judges each prompt's answers as a person does on the annotate page: a thumbs
    on each answer and, when its scores order them strictly, a ranking; all in one `POST /v1/annotations`.
    With `shuffle` (a control run), each prompt's scores are shuffled among its answers before judging.
    Returns how much it stored."""
    counts = {"prompts": 0, "ratings_up": 0, "ratings_down": 0, "rankings": 0}
    for prompt, answers in generated:
        answers = [a for a in answers if a["text"].strip()]
        if not answers:
            continue
        scores = [float(score(prompt, answer["text"])) for answer in answers]
        metadata: dict[str, Any] = {"scores": scores, "simulated": True}
        if shuffle is not None:
            scores = shuffled(scores, shuffle)
            metadata |= {"control": "shuffled", "judged_scores": scores}
        ranking, ratings = judgement(scores)
        body = {
            "prompt": prompt,
            "annotator": annotator,
            "answers": [
                {"generation_id": answer["generation_id"], "rating": rating}
                for answer, rating in zip(answers, ratings, strict=True)
            ],
            "ranking": ranking,
            "metadata": metadata,
        }
        checked(client.post("/v1/annotations", json=body))
        counts["prompts"] += 1
        counts["ratings_up"] += ratings.count("up")
        counts["ratings_down"] += ratings.count("down")
        counts["rankings"] += ranking is not None
        if on_done:
            on_done()
    return counts


def shuffled(scores: list[float], generator: random.Random) -> list[float]:
    """The same scores in another order among the same answers: as many ups, downs and pairs, no signal."""
    order = list(scores)
    generator.shuffle(order)
    return order


def wait_for_people(client: httpx.Client, batch: str, timeout_s: float, poll_s: float = 10.0) -> dict[str, Any]:
    """Poll the batch's progress until every task has its annotation (or the time is up); returns the progress."""
    deadline = time.monotonic() + timeout_s
    while True:
        progress = checked(client.get("/v1/tasks/progress", params={"batch": batch}))
        if progress["complete"] >= progress["tasks"] or time.monotonic() >= deadline:
            return progress
        time.sleep(poll_s)


def collect_feedback(run: LoopRun, number: int, row: LoopRound, base: ModelVersion) -> tuple[datetime, dict[str, Any]]:
    """The round's feedback; returns (when the round began collecting, what was collected). A rerun of a
    people round waits on the batch its earlier attempt loaded."""
    settings = run.settings
    batch = f"{settings.name}-round-{number}"
    earlier = (row.feedback or {}).get("since")
    started = datetime.fromisoformat(earlier) if earlier and row.batch else datetime.now(UTC)
    run.session(lambda s: history.update_round(s, row.id, feedback={"since": started.isoformat()}))
    if settings.annotator != "people" or row.batch != batch:
        sampling = settings.sampling
        if sampling.seed is not None:  # a new seed each round
            sampling = replace(sampling, seed=sampling.seed + number)
        if settings.annotator != "people":
            score = annotator_scorer(run)
            generated, plan = sample_judging(run, number, base, sampling, score)
            return started, simulated(run, generated, number, score) | plan | {"since": started.isoformat()}
        prompts = settings.objective.round_prompts(number, settings.prompts_per_round)
        run.say(f"  {base.name} answers {len(prompts)} prompts, {settings.sampling.n} answers each")
        generated = generate(run.client, prompts, sampling)
        loaded = import_batch(run.client, batch, generated)
        run.session(lambda s: history.update_round(s, row.id, batch=batch))
        run.say(f"  {loaded} tasks loaded as batch {batch}")
    run.say(f"  the tasks of batch {batch} wait on the /queue page; waiting for the annotators")
    progress = wait_for_people(run.client, batch, settings.people_timeout_s)
    if not progress["complete"]:
        minutes = settings.people_timeout_s / 60
        raise LoopError(f"no task of batch {batch} was annotated within {minutes:g} minutes")
    return started, {"tasks": progress["tasks"], "annotated": progress["complete"], "since": started.isoformat()}


def annotator_scorer(run: LoopRun) -> Scorer:
    """The simulated annotator's score (the loop's scorer, else the objective's preference), each (prompt,
    answer) scored once: the sampling passes look at the scores before the annotator posts them."""
    scorer = run.settings.scorer or run.settings.objective.prefers
    seen: dict[tuple[str, str], float] = {}

    def score(prompt: str, answer: str) -> float:
        if (prompt, answer) not in seen:
            try:
                value = float(scorer(prompt, answer))
            except Exception as error:  # the annotator's own code
                raise LoopError(f"the simulated annotator failed: {type(error).__name__}: {error}") from None
            if not math.isfinite(value):  # no order, no thumbs, and no JSON spelling for it
                raise LoopError(f"the simulated annotator scored an answer {value}: a score must be a finite number")
            seen[(prompt, answer)] = value
        return seen[(prompt, answer)]

    return score


def sample_judging(
    run: LoopRun, number: int, base: ModelVersion, sampling: Sampling, score: Scorer
) -> tuple[list[tuple[str, list[dict[str, Any]]]], dict[str, Any]]:
    """The round's answers for a simulated annotator, sampled in passes (`loop/budget.py`): two answers to
    many prompts, more to those whose answers were judged alike, the rest to new prompts; once more, with a
    budget sized to what is missing, when too few prompts were judged differently. Returns (prompt, answers)
    and what the plan did."""
    settings = run.settings
    objective, n = settings.objective, sampling.n
    groups: dict[str, list[dict[str, Any]]] = {}
    asked = 0

    def ask(prompts: list[str], answers: int) -> None:
        nonlocal asked
        if not prompts:
            return
        for prompt, got in generate(run.client, prompts, sampling, answers=answers, seed_offset=asked):
            groups.setdefault(prompt, []).extend(got)
        asked += len(prompts) * answers

    def judged(prompt: str) -> list[float]:
        return [score(prompt, a["text"]) for a in groups[prompt] if a["text"].strip()]

    budgets, found = 0, 0
    whole = settings.prompts_per_round * n
    budget, first, pool = whole, first_answers(n), objective.train_prompts
    while True:
        fresh = (
            objective.round_prompts(number, first_pass_prompts(budget, n))
            if not groups
            else following(pool, list(groups), first_pass_prompts(budget, n))
        )
        ask(fresh, first)
        left = budget - len(fresh) * first
        order = list(groups)
        more = top_ups([judged(p) for p in order], left, n, [len(groups[p]) for p in order])
        missing = {order[i]: n - len(groups[order[i]]) for i in more}
        for more in sorted(set(missing.values())):  # one call per number of answers missing
            ask([p for p, m in missing.items() if m == more], more)
        left -= sum(missing.values())
        ask(following(pool, list(groups), left // first), first)
        found = signal([judged(p) for p in groups])
        budgets += 1
        run.say(
            f"  {base.name} answered {len(groups)} prompts ({asked} answers); the annotator judged the answers "
            f"of {found} prompts differently"
        )
        if found >= settings.signal_wanted or budgets > MORE_BUDGETS or len(groups) >= len(pool):
            break
        budget = shortfall_budget(whole, asked, found, settings.signal_wanted)
        run.say(
            f"  too little signal (fewer than {settings.signal_wanted} prompts): collecting more "
            f"(up to {budget} answers)"
        )
    return list(groups.items()), {"answers": asked, "signal_prompts": found, "budgets": budgets}


def simulated(
    run: LoopRun, generated: list[tuple[str, list[dict[str, Any]]]], number: int, score: Scorer
) -> dict[str, Any]:
    """The simulated annotator's judgements of the round's answers (by the objective's preference unless
    the loop was given a scorer; shuffled among each prompt's answers in a control run, seeded by the round)."""
    shuffle = random.Random(f"{run.settings.name}-{number}") if run.settings.control == "shuffled" else None
    if shuffle is not None:
        run.say("  control run: the annotator's judgements are shuffled among each prompt's answers")
    feedback = annotate(run.client, generated, run.settings.annotator_name, score, shuffle=shuffle)
    run.say(
        f"  the simulated annotator judged the answers to {feedback['prompts']} prompts: "
        f"{feedback['ratings_up']} thumbs up, {feedback['ratings_down']} down, {feedback['rankings']} rankings"
    )
    return feedback | ({"control": "shuffled"} if shuffle is not None else {})
