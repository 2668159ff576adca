"""Arena: two model versions answer one prompt anonymously (order randomised) for one annotator; the battle
is recorded, and that annotator's one vote on it is stored as a comparison linked to both answers'
generations (and so to both versions); a leaderboard from the votes, computed off the request path.

POST /v1/arena/battles {"prompt", "annotator"?, "models"?}  → {"battle_id", "answers": [{"generation_id", "text"}]}
POST /v1/arena/votes {"battle_id"? | "generation_ids": [left, right], "winner": "left"|"right"|"tie"}
GET  /v1/arena/leaderboard                                  → Bradley-Terry ratings with 95% intervals
"""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_feedback_loop.api.deps import Annotator, SessionDep, StateDep, require_annotate_or_read
from llm_feedback_loop.api.schemas import CleanText, ComparisonCreate, NonEmptyText, RowId
from llm_feedback_loop.api.security import annotator_name
from llm_feedback_loop.arena.battles import FLIPPED, find_battle, record_vote, store_battle
from llm_feedback_loop.arena.contenders import pick_contenders
from llm_feedback_loop.arena.leaderboard import LeaderboardUnavailable
from llm_feedback_loop.auth.roles import Permission
from llm_feedback_loop.chat.providers import ProviderError
from llm_feedback_loop.feedback.links import comparison_values
from llm_feedback_loop.feedback.rows import common_values
from llm_feedback_loop.logging_redaction import redact
from llm_feedback_loop.models.loader import ModelLoadError
from llm_feedback_loop.models.registry import RegistryError
from llm_feedback_loop.serving.engine import BadPrompt, GenerationError, SamplingParams
from llm_feedback_loop.storage.tables import Generation

router = APIRouter(prefix="/v1/arena", tags=["arena"])

MIN_ARENA_TEMPERATURE = 0.1


class BattleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: NonEmptyText
    annotator: NonEmptyText | None = Field(default=None, max_length=200, description="Default: the signed-in user.")
    models: Annotated[list[CleanText], Field(min_length=2, max_length=2)] | None = Field(
        default=None,
        description="The two versions (admins only: each new pair loads models). Default: the active version and "
        "the newest other chat version.",
    )
    max_tokens: Annotated[int, Field(ge=1, le=2048)] = 256
    # Sampled, never greedy: a greedy answer could be reproduced through /v1/chat, naming the active version.
    temperature: Annotated[float, Field(ge=MIN_ARENA_TEMPERATURE, le=2.0)] = 0.8


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    battle_id: RowId | None = Field(default=None, description="The battle_id POST /v1/arena/battles returned.")
    generation_ids: Annotated[list[RowId], Field(min_length=2, max_length=2)] | None = Field(
        default=None, description="The battle's two answers, in the order shown (instead of battle_id)."
    )
    winner: Literal["left", "right", "tie"]
    annotator: NonEmptyText | None = Field(default=None, max_length=200, description="Default: the signed-in user.")
    comment: CleanText | None = None

    @model_validator(mode="after")
    def names_a_battle(self) -> VoteIn:
        if self.battle_id is None and self.generation_ids is None:
            raise ValueError("battle_id or generation_ids: name the battle voted on (POST /v1/arena/battles)")
        if self.generation_ids is not None and self.generation_ids[0] == self.generation_ids[1]:
            raise ValueError("generation_ids: the two different answers of one battle")
        return self


@router.post("/battles")
async def start_battle(body: BattleIn, state: StateDep, session: SessionDep, user: Annotator) -> dict[str, Any]:
    """Both versions answer the prompt; the answers come back in random order, without model names."""
    annotator = annotator_name(user, body.annotator, required="who will vote on this battle")
    if body.models is not None and not user.may(Permission.manage):
        raise HTTPException(
            status_code=403, detail="models: only an admin chooses the arena's versions (each new pair loads models)"
        )
    try:
        contenders = list(await pick_contenders(session, body.models))
    except RegistryError as error:
        raise HTTPException(status_code=409, detail=str(error)) from None
    await session.commit()  # end the read: no transaction or connection is held while the models answer
    random.shuffle(contenders)
    messages = [{"role": "user", "content": body.prompt}]
    params = SamplingParams(max_tokens=body.max_tokens, temperature=body.temperature, top_p=0.95)
    answers = []
    for version in contenders:
        try:
            async with state.arena.use(version) as served:
                input_ids = await served.engine.encode_chat_async(messages)
                served.engine.check_fits(input_ids, params.max_tokens)
                completion = await served.engine.complete(input_ids, params)
        except (ModelLoadError, ProviderError, GenerationError) as error:
            raise HTTPException(status_code=503, detail=f"model version {version.name}: {redact(str(error))}") from None
        except BadPrompt as error:
            raise HTTPException(status_code=400, detail=str(error)) from None
        text = completion.text.replace("\x00", "\ufffd")
        # Logged under no annotator: the voter must not find the versions among its own rows before voting
        # (the battle row records whom it was issued to).
        values = common_values(messages, None, {"arena": True}) | {
            "response": text,
            "model": served.source,
            "model_version": version.name,
            "parameters": {"max_tokens": params.max_tokens, "temperature": params.temperature, "arena": True},
        }
        answers.append((version, values))
    battle, generation_ids = await store_battle(session, annotator, answers)
    return {
        "battle_id": battle.id,
        "prompt": body.prompt,
        "answers": [
            {"generation_id": generation_id, "text": values["response"]}
            for generation_id, (_, values) in zip(generation_ids, answers, strict=True)
        ],
    }


@router.post("/votes", status_code=201)
async def vote(body: VoteIn, state: StateDep, session: SessionDep, user: Annotator) -> dict[str, Any]:
    """Store the vote on a battle issued to this annotator as a comparison of its two answers (a tie: no
    ranking), once; reveal the versions in the order the answers were named."""
    annotator = annotator_name(user, body.annotator, required="who voted")
    found = await find_battle(session, body.battle_id, body.generation_ids)
    if found is None:
        raise HTTPException(
            status_code=404,
            detail=f"{'battle_id' if body.battle_id is not None else 'generation_ids'}: no arena battle with "
            "these answers; votes are taken only on battles started with POST /v1/arena/battles",
        )
    battle = found.battle
    shown = [battle.left_generation_id, battle.right_generation_id]
    if body.generation_ids is not None and sorted(body.generation_ids) != sorted(g or 0 for g in shown):
        raise HTTPException(
            status_code=422, detail=f"generation_ids: battle {battle.id} has the answers {shown}, not these"
        )
    if battle.annotator != annotator:
        raise HTTPException(
            status_code=403, detail=f"battle {battle.id} was not issued to {annotator!r}: vote on your own battles"
        )
    if battle.voted_at is not None:
        raise HTTPException(status_code=409, detail=f"battle {battle.id} has been voted on already")
    left = await session.get(Generation, battle.left_generation_id) if battle.left_generation_id else None
    if left is None or battle.right_generation_id is None:
        raise HTTPException(status_code=409, detail=f"battle {battle.id}: an answer was deleted; start a new battle")
    winner = FLIPPED[body.winner] if found.flipped else body.winner
    comparison = ComparisonCreate(
        messages=left.prompt_messages,
        annotator=annotator,
        comment=body.comment,
        metadata={"arena": True, "winner": winner, "battle_id": battle.id},
        responses=[{"id": str(index), "generation_id": generation_id} for index, generation_id in enumerate(shown)],
        ranking={"left": [0, 1], "right": [1, 0], "tie": None}[winner],
    )
    values = await comparison_values(session, comparison)  # texts and versions filled in from the generations
    battle_id, models = battle.id, [battle.left_version, battle.right_version]
    comparison_id = await record_vote(session, battle_id, winner, values)
    if comparison_id is None:
        raise HTTPException(status_code=409, detail=f"battle {battle_id} has been voted on already")
    state.arena.leaderboard.mark_stale()
    return {"comparison_id": comparison_id, "battle_id": battle_id, "models": models[::-1] if found.flipped else models}


@router.get("/leaderboard", dependencies=[Depends(require_annotate_or_read)])
async def arena_leaderboard(state: StateDep) -> dict[str, Any]:
    """Model versions by Bradley-Terry rating (Elo scale) from arena votes, with 95% bootstrap intervals;
    cached, recomputed in the background after votes (`computed_at`, `refreshing`)."""
    try:
        board, refreshing = await state.arena.leaderboard.current()
    except LeaderboardUnavailable as error:
        raise HTTPException(status_code=503, detail=f"{error}; try again shortly") from None
    return {
        "battles": board.battles,
        "standings": [asdict(standing) for standing in board.standings],
        "computed_at": board.computed_at,
        "refreshing": refreshing,
    }
