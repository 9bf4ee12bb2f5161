"""CORS for the sites that embed the portal (POSTBACK_EMBED_ORIGINS): their pages may call
the API from the browser with an app-portal token, as svix-react's hooks do.

Only the routes an app-portal token can use are open to them (an application's own routes,
the event-type catalog, logout, health); a preflight for any other route, or from any
other origin, is refused. An allowed origin's request that carries an operator token is
refused too: the operator's key never belongs in a browser. The answer names the origin
it allows, never ``*``, and allows no credentials (the token travels in Authorization, the
SDK sends no cookies). Without embedding origins this middleware is not installed."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postback.api import errors
from postback.api.idempotency import bearer_of
from postback.store.store import Store

# The routes an app-portal token may call (api/deps.py: own_app, authenticate).
PORTAL_ROUTES = re.compile(
    r"^/api/v1/(app/[^/]+(/.*)?|event-type(/.*)?|auth/logout/?|health(/.*)?)$"
)
METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"
# What the svix SDKs send (svix's request.ts: accept, authorization, content-type,
# idempotency-key, svix-req-id, svix-retry-count, user-agent) and postback's opt-ins.
ALLOWED_HEADERS = (
    b"accept, authorization, content-type, idempotency-key, svix-req-id, svix-retry-count, "
    b"user-agent, prefer, postback-return-existing"
)
EXPOSED_HEADERS = b"retry-after"
MAX_AGE = b"600"  # how long a browser may reuse a preflight's answer


class Cors:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(o.encode("latin-1") for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = origin in self.origins and PORTAL_ROUTES.match(scope["path"]) is not None
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await self._preflight(send, origin, allowed)
            return
        if not allowed:  # no CORS headers: the browser keeps the answer from the page
            await self.app(scope, receive, send)
            return
        cors = [
            (b"access-control-allow-origin", origin),
            (b"access-control-expose-headers", EXPOSED_HEADERS),
            (b"vary", b"Origin"),
        ]
        if await self._operator(scope, headers):
            response = errors.error(
                403,
                "operator tokens may not be used from a browser page "
                f"({origin.decode('latin-1')}); use an app-portal token",
            )
            await _answer(send, 403, [*response.raw_headers, *cors], response.body)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, with_cors)

    async def _preflight(self, send: Send, origin: bytes, allowed: bool) -> None:
        if not allowed:
            response = errors.error(
                403, "this origin may not call this route from a browser (POSTBACK_EMBED_ORIGINS)"
            )
            headers = [*response.raw_headers, (b"vary", b"Origin")]
            await _answer(send, 403, headers, response.body)
            return
        headers = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", METHODS),
            (b"access-control-allow-headers", ALLOWED_HEADERS),
            (b"access-control-max-age", MAX_AGE),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        await _answer(send, 204, headers, b"")

    async def _operator(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        token = bearer_of(headers)
        if token is None:
            return False
        store: Store = scope["app"].state.store
        principal = await store.authenticate(token)
        return principal is not None and principal.is_operator


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
