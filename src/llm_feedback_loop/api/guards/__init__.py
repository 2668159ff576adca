"""ASGI middleware of both servers, one module per family of guards: where a request may come from
(`origin`), what it may carry (`content`, `strict_json`), the headers on every answer (`headers`), and
`Idempotency-Key` on POSTs (`idempotency`); `asgi` holds what they share.

Pure ASGI (not `BaseHTTPMiddleware`): no task per request, and streaming responses pass through untouched.
"""

from __future__ import annotations

from fastapi import FastAPI

from llm_feedback_loop.api.guards.content import BodySizeLimit, NoNulInURL
from llm_feedback_loop.api.guards.headers import SecurityHeaders
from llm_feedback_loop.api.guards.idempotency import IdempotentPosts
from llm_feedback_loop.api.guards.origin import SameOriginWrites, TrustedHosts
from llm_feedback_loop.settings import Settings


def install_http_guards(app: FastAPI, settings: Settings) -> None:
    """The middleware both servers run. Outermost first: security headers (on every answer, refusals too),
    trusted hosts, NUL in the URL, cross-origin writes, body size, idempotency (innermost: it needs the bounded
    body)."""
    drain_bytes = max(8 * settings.max_body_bytes, 4 * 1_048_576)
    docs = {path for path in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if path}
    # add_middleware puts each one outside the ones before it: innermost first.
    app.add_middleware(IdempotentPosts)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, drain_bytes=drain_bytes)
    app.add_middleware(SameOriginWrites, drain_bytes=drain_bytes)
    app.add_middleware(NoNulInURL, drain_bytes=drain_bytes)
    app.add_middleware(TrustedHosts, hosts=settings.trusted_hosts, drain_bytes=drain_bytes)
    app.add_middleware(SecurityHeaders, csp_exempt=docs)
