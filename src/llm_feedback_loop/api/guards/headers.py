"""Headers on every answer: `nosniff`, `Referrer-Policy`, `X-Frame-Options`, and a Content-Security-Policy on
HTML pages."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages are served without inline script, so the policy can forbid it: an injected <script> does not run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
CSP_HEADER_VALUE = CONTENT_SECURITY_POLICY.encode()
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """Adds `nosniff`, `Referrer-Policy` and `X-Frame-Options` to every response, and the Content-Security-Policy
    to HTML pages (not to `csp_exempt`: FastAPI's /docs and /redoc load their scripts from a CDN)."""

    def __init__(self, app: ASGIApp, csp_exempt: Iterable[str] = ()) -> None:
        self.app = app
        self.csp_exempt = frozenset(csp_exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with_csp = scope["path"] not in self.csp_exempt

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in SECURITY_HEADERS if header[0] not in present)
                if with_csp and b"content-security-policy" not in present:
                    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
                    if content_type.lower().startswith(b"text/html"):
                        headers.append((b"content-security-policy", CSP_HEADER_VALUE))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
