"""Arena: two model versions answer one prompt anonymously (order randomised); the vote is stored as a
comparison linked to both answers' generations (and so to both versions); a leaderboard from the votes.

POST /v1/arena/battles {"prompt", "annotator", "models"?}  → {"answers": [{"generation_id", "text"}, ...]}
POST /v1/arena/votes {"generation_ids": [left, right], "winner": "left"|"right"|"tie", "annotator"}
GET  /v1/arena/leaderboard                                  → Bradley-Terry ratings with 95% intervals
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select

from llm_feedback_loop.api.deps import Annotator, SessionDep, StateDep, require_annotate_or_read
from llm_feedback_loop.api.feedback_rows import common_values, comparison_values
from llm_feedback_loop.api.schemas import CleanText, ComparisonCreate, NonEmptyText, RowId
from llm_feedback_loop.api.security import annotator_name
from llm_feedback_loop.arena.contenders import pick_contenders
from llm_feedback_loop.arena.ratings import Battle, leaderboard
from llm_feedback_loop.chat.providers import ProviderError
from llm_feedback_loop.models.loader import ModelLoadError
from llm_feedback_loop.models.registry import RegistryError
from llm_feedback_loop.serving.engine import PromptTooLong, SamplingParams
from llm_feedback_loop.storage.tables import Comparison, Generation

router = APIRouter(prefix="/v1/arena", tags=["arena"])


class BattleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: NonEmptyText
    annotator: NonEmptyText | None = Field(default=None, max_length=200, description="Default: the signed-in user.")
    models: Annotated[list[CleanText], Field(min_length=2, max_length=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=2048)] = 256
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.8


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generation_ids: Annotated[list[RowId], Field(min_length=2, max_length=2)]
    winner: Literal["left", "right", "tie"]
    annotator: NonEmptyText | None = Field(default=None, max_length=200, description="Default: the signed-in user.")
    comment: CleanText | None = None


@router.post("/battles")
async def start_battle(body: BattleIn, state: StateDep, session: SessionDep, user: Annotator) -> dict[str, Any]:
    """Both versions answer the prompt; the answers come back in random order, without model names."""
    body = body.model_copy(update={"annotator": annotator_name(user, body.annotator)})
    try:
        contenders = list(await pick_contenders(session, body.models))
    except RegistryError as error:
        raise HTTPException(status_code=409, detail=str(error)) from None
    random.shuffle(contenders)
    messages = [{"role": "user", "content": body.prompt}]
    params = SamplingParams(max_tokens=body.max_tokens, temperature=body.temperature, top_p=0.95)
    answers = []
    for version in contenders:
        try:
            served = await state.arena.served(version)
            input_ids = served.engine.encode_chat(messages)
            served.engine.check_fits(input_ids, params.max_tokens)
            completion = await served.engine.complete(input_ids, params)
        except (ModelLoadError, ProviderError) as error:
            raise HTTPException(status_code=503, detail=f"model version {version.name}: {error}") from None
        except PromptTooLong as error:
            raise HTTPException(status_code=400, detail=str(error)) from None
        text = completion.text.replace("\x00", "\ufffd")
        values = common_values(messages, body.annotator, {"arena": True}) | {
            "response": text,
            "model": served.source,
            "model_version": version.name,
            "parameters": {"max_tokens": params.max_tokens, "temperature": params.temperature, "arena": True},
        }
        generation_id = await state.writer.insert(Generation, values)
        answers.append({"generation_id": generation_id, "text": text})
    return {"prompt": body.prompt, "answers": answers}


@router.post("/votes", status_code=201)
async def vote(body: VoteIn, session: SessionDep, user: Annotator) -> dict[str, Any]:
    """Store the vote as a comparison of the two answers (a tie: no ranking); reveal the versions."""
    body = body.model_copy(update={"annotator": annotator_name(user, body.annotator)})
    if body.annotator is None:
        raise HTTPException(status_code=422, detail="annotator: required (who voted)")
    rows = {g.id: g for g in await session.scalars(select(Generation).where(Generation.id.in_(body.generation_ids)))}
    missing = [g for g in body.generation_ids if g not in rows]
    if missing:
        raise HTTPException(status_code=404, detail=f"generation_ids: no generation {missing[0]}")
    left, right = (rows[g] for g in body.generation_ids)
    if not all((generation.extra or {}).get("arena") for generation in (left, right)):
        raise HTTPException(
            status_code=422, detail="generation_ids: answers of an arena battle (POST /v1/arena/battles)"
        )
    earlier = await session.scalars(
        select(Comparison).where(Comparison.prompt_hash == left.prompt_hash, Comparison.annotator == body.annotator)
    )
    voted = {tuple(sorted(r.get("generation_id") or 0 for r in c.responses)) for c in earlier}
    if tuple(sorted(body.generation_ids)) in voted:
        raise HTTPException(status_code=409, detail=f"{body.annotator} has voted on this battle already")
    if left.prompt_hash != right.prompt_hash or left.model_version == right.model_version:
        raise HTTPException(
            status_code=422, detail="generation_ids: two answers to the same prompt, by two model versions"
        )
    ranking = {"left": [0, 1], "right": [1, 0], "tie": None}[body.winner]
    comparison = ComparisonCreate(
        messages=left.prompt_messages,
        annotator=body.annotator,
        comment=body.comment,
        metadata={"arena": True, "winner": body.winner},
        responses=[{"id": str(index), "generation_id": g.id} for index, g in enumerate((left, right))],
        ranking=ranking,
    )
    values = await comparison_values(session, comparison)  # texts and versions filled in from the generations
    comparison_id = (await session.execute(insert(Comparison).values(values).returning(Comparison.id))).scalar_one()
    await session.commit()
    return {"comparison_id": comparison_id, "models": [left.model_version, right.model_version]}


async def arena_battles(session: SessionDep) -> list[Battle]:
    battles: list[Battle] = []
    arena_prompts = select(Generation.prompt_hash).where(Generation.extra["arena"].as_boolean().is_(True))
    query = select(Comparison).where(Comparison.prompt_hash.in_(arena_prompts)).order_by(Comparison.id)
    for comparison in await session.scalars(query):
        meta = comparison.extra or {}
        if not meta.get("arena") or len(comparison.responses) != 2:
            continue
        first, second = (response.get("model_version") for response in comparison.responses)
        if not first or not second or first == second:
            continue
        score = {"left": 1.0, "right": 0.0}.get(meta.get("winner"), 0.5)
        battles.append((first, second, score))
    return battles


@router.get("/leaderboard", dependencies=[Depends(require_annotate_or_read)])
async def arena_leaderboard(session: SessionDep) -> dict[str, Any]:
    """Model versions by Bradley-Terry rating (Elo scale) from arena votes, with 95% bootstrap intervals."""
    battles = await arena_battles(session)
    standings = await asyncio.to_thread(leaderboard, battles)  # the bootstrap is CPU work: off the event loop
    return {"battles": len(battles), "standings": [asdict(standing) for standing in standings]}
