"""`/v1/export/{kind}`: training data straight from the database, streamed as JSONL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from llm_feedback_loop.api.deps import StateDep, require_export
from llm_feedback_loop.api.routes.feedback import FilterDep
from llm_feedback_loop.storage.json_values import INT_MAX
from llm_feedback_loop.training_data.export import export_manifest_only, iter_export_lines
from llm_feedback_loop.training_data.options import DatasetKind, ExportOptions, PairStrategy, RowFormat

router = APIRouter(prefix="/v1/export", tags=["export"], dependencies=[Depends(require_export)])


def export_options(
    state: StateDep,
    kind: DatasetKind,
    format: Annotated[RowFormat, Query(description="standard (text) or conversational (messages).")] = "standard",
    strategy: Annotated[PairStrategy, Query(description="How comparisons become pairs (dpo, reward).")] = "all-pairs",
    dedupe: Annotated[bool, Query(description="Emit each distinct row once.")] = True,
    include_comparisons: Annotated[bool, Query(description="sft: add the best answer of each comparison.")] = False,
    test_size: Annotated[float, Query(ge=0.0, lt=1.0, description="Share of prompts held out for test.")] = 0.0,
    seed: Annotated[int, Query(ge=0, le=INT_MAX, description="Seed of the split and of random pairing.")] = 0,
    repetition_pairs: Annotated[
        bool,
        Query(
            description="dpo, reward: one more training pair per prompt whose liked answer is a list: that list "
            "preferred to itself repeated."
        ),
    ] = False,
) -> ExportOptions:
    try:
        return ExportOptions(
            kind,
            format,
            strategy,
            dedupe,
            include_comparisons,
            test_size,
            seed,
            max_pairs_per_prompt=state.settings.max_pairs_per_prompt,
            repetition_pairs=repetition_pairs,
        )
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None


OptionsDep = Annotated[ExportOptions, Depends(export_options)]


@router.get("/{kind}", response_class=StreamingResponse)
async def export_dataset(
    options: OptionsDep,
    where: FilterDep,
    state: StateDep,
    split: Annotated[Literal["train", "test"] | None, Query(description="Only this side of the split.")] = None,
) -> StreamingResponse:
    """The dataset of one kind (sft, dpo, reward, kto) as JSONL lines in TRL's format."""
    if split == "test" and options.test_size == 0:
        raise HTTPException(status_code=422, detail="split=test needs test_size > 0")

    async def lines() -> AsyncIterator[bytes]:
        async for _, line in iter_export_lines(state.engine, options, where, only_split=split):
            yield line

    filename = f"{options.kind}{'.' + split if split else ''}.jsonl"
    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{kind}/manifest")
async def export_manifest(options: OptionsDep, where: FilterDep, state: StateDep) -> dict[str, Any]:
    """What the export would contain: counts per split and source, options, filters, sha256 per split."""
    return await export_manifest_only(state.engine, options, where)
