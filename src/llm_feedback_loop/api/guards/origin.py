"""Where a request may come from: the Host it names (TRUSTED_HOSTS, against DNS rebinding) and, for a write a
browser sends, the site it was sent from (against cross-site request forgery)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from llm_feedback_loop.api.guards.asgi import header, refuse
from llm_feedback_loop.api.security import SAFE_METHODS


def host_name(host: str) -> str:
    """The name in a Host header, without its port: `example.com:8000` → `example.com`, `[::1]:80` → `[::1]`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and ":" not in name else host


class TrustedHosts:
    """Answers only requests whose Host header is one of `hosts` (`*` any, `*.example.com` its subdomains):
    a DNS-rebinding page, whose requests carry the attacker's name, gets 400."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str], drain_bytes: int) -> None:
        self.app = app
        names = [name.strip().lower() for name in hosts]
        self.any = "*" in names
        self.exact = frozenset(name for name in names if not name.startswith("*."))
        self.suffixes = tuple(name[1:] for name in names if name.startswith("*."))
        self.drain_bytes = drain_bytes

    def trusts(self, host: str) -> bool:
        name = host_name(host)
        bare = name.strip("[]")
        return name in self.exact or bare in self.exact or bool(self.suffixes and name.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = (header(scope, b"host") or b"").decode("latin-1")
        if self.trusts(host):
            await self.app(scope, receive, send)
            return
        shown = host[:100] if host else "(none)"
        await refuse(
            scope,
            receive,
            send,
            400,
            f"Host header {shown!r} is not in TRUSTED_HOSTS: add the name this service is reached by to "
            "TRUSTED_HOSTS (a comma-separated list, `*` for any)",
            self.drain_bytes,
        )


def _origin_parts(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of `scheme://host[:port]`, the default port filled in; None if it is not one."""
    try:
        parts = urlsplit(origin)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in ("http", "https") or not host:
        return None
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80)


class SameOriginWrites:
    """Refuses state-changing requests a browser sends on behalf of another site (CSRF, including the
    `text/plain` POSTs that need no CORS preflight). Requests without an Origin header (scripts, curl, SDKs)
    pass: only browsers send one, and a browser always does on a cross-origin write."""

    def __init__(self, app: ASGIApp, drain_bytes: int) -> None:
        self.app = app
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or (kind == "http" and scope["method"] in SAFE_METHODS):
            await self.app(scope, receive, send)
            return
        origin = header(scope, b"origin")
        fetch_site = header(scope, b"sec-fetch-site")
        if origin is None and fetch_site != b"cross-site":
            await self.app(scope, receive, send)
            return
        scheme = {"ws": "http", "wss": "https"}.get(scope["scheme"], scope["scheme"])
        own = f"{scheme}://{(header(scope, b'host') or b'').decode('latin-1')}"
        if fetch_site == b"cross-site":
            reason = "the browser marks it as sent by another site (Sec-Fetch-Site: cross-site)"
        else:
            sent = (origin or b"").decode("latin-1")
            own_parts = _origin_parts(own)
            if own_parts is not None and _origin_parts(sent) == own_parts:
                await self.app(scope, receive, send)
                return
            reason = f"it comes from {sent[:100]!r}, not from this service ({own[:100]!r})"
        await refuse(
            scope,
            receive,
            send,
            403,
            f"cross-origin request refused: {reason}. Use this service's own pages, or call it from a script "
            "(which sends no Origin header)",
            self.drain_bytes,
        )
