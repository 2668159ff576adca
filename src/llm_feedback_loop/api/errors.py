"""Error responses a client can act on: what was wrong, in which field. Never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from llm_feedback_loop.feedback.errors import FeedbackError
from llm_feedback_loop.feedback.payloads import describe_error

log = logging.getLogger(__name__)


SECRET_FIELDS = ("password", "secret", "token", "api_key")


def without_secrets(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The errors, without the value sent for a secret field (a password must not come back in a 422)."""
    return [
        {key: value for key, value in error.items() if key != "input"}
        if any(word in str(part).lower() for part in error.get("loc", ()) for word in SECRET_FIELDS)
        else error
        for error in errors
    ]


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        error = next(e for e in errors if e.get("type") == "json_invalid")
        reason = error.get("ctx", {}).get("error", "decode error")
        location = error.get("loc", ())
        at = f" at character {location[-1]}" if len(location) > 1 else ""
        return JSONResponse(
            status_code=400,
            content={
                "message": f"Request body is not valid JSON: {reason}{at}",
                "detail": jsonable_encoder(without_secrets(errors)),
            },
        )
    return JSONResponse(
        status_code=422,
        content={
            "message": "; ".join(describe_error(e) for e in errors),
            "detail": jsonable_encoder(without_secrets(errors)),
        },
    )


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(status_code=500, content={"message": "Internal server error; the server log has the details."})


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        status_code=exc.status_code,
        content={"message": str(exc.detail), "detail": exc.detail},
        headers=getattr(exc, "headers", None),
    )


async def feedback_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Feedback the store refused (FeedbackError): answered as an HTTPException of its status would be."""
    assert isinstance(exc, FeedbackError)
    return JSONResponse(status_code=exc.status_code, content={"message": exc.message, "detail": exc.message})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(FeedbackError, feedback_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
