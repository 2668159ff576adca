"""Routes of the web pages (`/` annotate, `/queue`, `/arena`, `/dashboard`) and their static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def annotate_page() -> FileResponse:
    return FileResponse(STATIC / "annotate.html", media_type="text/html")


@router.get("/queue")
async def queue_page() -> FileResponse:
    return FileResponse(STATIC / "annotate.html", media_type="text/html")  # the annotate page, in queue mode


@router.get("/dashboard")
async def dashboard_page() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")


@router.get("/arena")
async def arena_page() -> FileResponse:
    return FileResponse(STATIC / "arena.html", media_type="text/html")


def install_pages(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
