"""OAuth2 client credentials (RFC 6749 §4.4) for deliveries: the token request, and a cache
that shares each endpoint's token across its deliveries until shortly before it expires.

One token request at a time per endpoint and credentials: deliveries that find no valid token
wait for the one request in flight instead of each asking (a fan-out of a thousand messages
costs one token request). A 401 from the receiver drops the token it was sent with, and the
sender asks for a new one once for that delivery (``TokenCache.refresh``).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from postback.credentials import OAuthConfig

# Without expires_in (RFC 6749 §5.1 makes it optional) a token is kept this long.
DEFAULT_LIFETIME = 300.0
# Renewed this long before it expires (at most a tenth of its lifetime for short ones).
RENEW_MARGIN = 30.0
MAX_TOKEN_BYTES = 64 * 1024


class TokenError(Exception):
    """The token endpoint did not give a usable token; the text says why."""


Key = tuple[str, OAuthConfig]


class TokenCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[Key, tuple[str, float]] = {}
        self._locks: dict[Key, asyncio.Lock] = {}

    async def get(self, key: Key, fetch: Callable[[], Awaitable[tuple[str, float]]]) -> str:
        """A valid token for ``key``, fetched (``fetch`` gives token and lifetime in
        seconds) if there is none."""
        token = self._valid(key)
        if token is not None:
            return token
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            token = self._valid(key)  # another delivery fetched it meanwhile
            if token is not None:
                return token
            token, lifetime = await fetch()
            margin = min(RENEW_MARGIN, lifetime / 10)
            if len(self._tokens) >= 10_000:
                self._tokens.clear()
            self._tokens[key] = (token, self._clock() + lifetime - margin)
            return token

    async def refresh(
        self, key: Key, rejected: str, fetch: Callable[[], Awaitable[tuple[str, float]]]
    ) -> str:
        """After the receiver refused ``rejected``: a new token (unless another delivery
        already replaced it)."""
        kept = self._tokens.get(key)
        if kept is not None and kept[0] == rejected:
            del self._tokens[key]
        return await self.get(key, fetch)

    def _valid(self, key: Key) -> str | None:
        kept = self._tokens.get(key)
        if kept is None or kept[1] <= self._clock():
            return None
        return kept[0]


def token_request(config: OAuthConfig) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and form fields of the token request."""
    form = {"grant_type": "client_credentials", **dict(config.extra_params)}
    if config.scopes:
        form["scope"] = " ".join(config.scopes)
    if config.audience:
        form["audience"] = config.audience
    headers = {"accept": "application/json"}
    secret = config.client_secret or ""
    if config.auth_method == "clientSecretPost":
        form |= {"client_id": config.client_id, "client_secret": secret}
    else:
        # §2.3.1: the id and secret are form-urlencoded before they are joined.
        pair = f"{quote(config.client_id, safe='')}:{quote(secret, safe='')}"
        headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return headers, form


async def fetch_token(
    session: aiohttp.ClientSession, config: OAuthConfig, via: dict[str, Any]
) -> tuple[str, float]:
    """POST the token request; (access token, lifetime in seconds) or TokenError for an
    answer that gives none (network errors are raised as they are, for the sender to word)."""
    headers, form = token_request(config)
    headers |= via.pop("headers_extra", None) or {}
    try:
        async with session.post(
            config.token_url, data=form, headers=headers, allow_redirects=False, **via
        ) as response:
            body = await response.content.read(MAX_TOKEN_BYTES)
            status = response.status
    except TimeoutError:
        raise TokenError("the token endpoint did not answer in time") from None
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if status != 200:
        raise TokenError(f"the token endpoint answered {status}{_error_of(answer, body)}")
    if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        raise TokenError("the token endpoint's answer has no access_token")
    kind = answer.get("token_type")
    if isinstance(kind, str) and kind.lower() != "bearer":
        raise TokenError(f"the token endpoint gave a {kind!r} token; only bearer is supported")
    lifetime = answer.get("expires_in")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_LIFETIME
    return answer["access_token"], float(lifetime)


def _error_of(answer: Any, body: bytes) -> str:
    """RFC 6749 §5.2's error and description, else the start of the body."""
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        described = answer.get("error_description")
        text = answer["error"] + (f" ({described})" if isinstance(described, str) else "")
        return f": {text}"[:300]
    shown = body[:200].decode("utf-8", errors="replace").strip()
    return f": {shown}" if shown else ""
