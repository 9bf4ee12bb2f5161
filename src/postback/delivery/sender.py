"""One webhook POST: signed headers, a timeout, no redirects, the response captured; through
the egress proxy when one is set (delivery/egress.py), past the SSRF guard and network lists
(delivery/ssrf.py)."""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from postback.credentials import OAuthConfig, client_context
from postback.delivery.egress import SOCKS_ERRORS, Egress, Proxy, proxy_failure, socks_connector
from postback.delivery.oauth import TokenCache, TokenError, fetch_token
from postback.delivery.scheduler import retry_after_seconds
from postback.delivery.ssrf import (
    BlockedAddress,
    GuardedResolver,
    NetworkPolicy,
    blocked_reason,
    check_address,
    literal_address,
)
from postback.delivery.tls_errors import tls_problem
from postback.domain import AttemptResult, ClaimedDelivery, utcnow
from postback.signing import signature_header

VERDICTS_KEPT = 10_000  # URLs whose guard verdict a sender remembers (then it starts again)


class Sender:
    """Sends deliveries over one pooled aiohttp session (keep-alive per host)."""

    def __init__(
        self,
        *,
        timeout: float,
        response_max_bytes: int = 4096,
        user_agent: str = "postback/0.1",
        max_connections: int = 200,
        allow_private_networks: bool = False,
        require_https: bool = False,
        resolver: AbstractResolver | None = None,
        retry_after_max: float = 3600.0,
        policy: NetworkPolicy | None = None,
        egress_proxy: str | None = None,
        egress_no_proxy: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.retry_after_max = retry_after_max
        self.require_https = require_https
        self.policy = policy or NetworkPolicy(allow_private=allow_private_networks)
        self.egress = Egress(egress_proxy, egress_no_proxy, policy=self.policy, resolver=resolver)
        self._resolver = resolver
        self.response_max_bytes = response_max_bytes
        self.user_agent = user_agent
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._socks: aiohttp.ClientSession | None = None  # the SOCKS proxy's, when set
        self.tokens = TokenCache(clock)  # OAuth2 access tokens, shared by deliveries
        # Each URL's host, port and the guard's verdict on an address literal: fixed for
        # this sender's policy, and worked out again on every attempt they cost 7 µs of
        # the ~230 µs a delivery takes in a fan-out (docs/performance.md).
        self._verdicts: dict[str, tuple[str, int, str | None]] = {}
        self._tls_contexts: dict[tuple[str, tuple[str | None, str | None]], ssl.SSLContext] = {}

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            resolver = self._resolver
            if self.policy.checks:
                # The proxy's own name is the operator's, usually private: not judged.
                proxy = self.egress.proxy
                exempt = [proxy.host] if proxy is not None and not proxy.is_socks else []
                resolver = GuardedResolver(resolver, self.policy, exempt)
            self._session = self._new_session(aiohttp.TCPConnector(resolver=resolver, **self._pool))
            if self.egress.proxy is not None and self.egress.proxy.is_socks:
                # Names are judged by Egress.precheck before the tunnel is asked for.
                self._socks = self._new_session(socks_connector(self.egress.proxy, **self._pool))

    @property
    def _pool(self) -> dict:
        return {"limit": self.max_connections, "ttl_dns_cache": 60, "enable_cleanup_closed": True}

    def _new_session(self, connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type"),
        )

    def _route(
        self, proxy: Proxy | None, url: str
    ) -> tuple[aiohttp.ClientSession, dict, dict[str, str]]:
        """The session, request arguments and extra headers of a request to ``url``
        through ``proxy`` (or direct)."""
        assert self._session is not None
        if proxy is None:
            return self._session, {}, {}
        if proxy.is_socks:
            assert self._socks is not None
            return self._socks, {}, {}
        extra: dict[str, str] = {}
        if proxy.headers and not url[:6].lower().startswith("https:"):
            # Forwarded in the clear, the request itself carries the proxy's credentials
            # (aiohttp puts proxy_headers on CONNECT only); never inside a TLS tunnel.
            extra = proxy.headers
        return self._session, {"proxy": proxy.url, "proxy_headers": proxy.headers}, extra

    async def close(self) -> None:
        for session in (self._session, self._socks):
            if session is not None:
                await session.close()
        self._session = self._socks = None

    async def __aenter__(self) -> Sender:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def build_headers(self, delivery: ClaimedDelivery, timestamp: int) -> dict[str, str]:
        stamp = str(timestamp)
        signature = signature_header(delivery.secrets, delivery.msg_id, timestamp, delivery.payload)
        return {
            **delivery.headers,
            "content-type": "application/json",
            "user-agent": self.user_agent,
            "webhook-id": delivery.msg_id,
            "webhook-timestamp": stamp,
            "webhook-signature": signature,
            "svix-id": delivery.msg_id,
            "svix-timestamp": stamp,
            "svix-signature": signature,
        }

    async def send(
        self, delivery: ClaimedDelivery, traceparent: str | None = None
    ) -> AttemptResult:
        """Never raises for a network or HTTP problem: it becomes a failed result.
        ``traceparent``: a W3C trace context for the receiver (POSTBACK_SEND_TRACEPARENT)."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        at = utcnow()
        started = time.monotonic()
        if self.require_https and not delivery.url.lower().startswith("https://"):
            # Saved before POSTBACK_REQUIRE_HTTPS was set: nothing goes out in the clear.
            return self._failed(
                delivery,
                at,
                started,
                "not sent: POSTBACK_REQUIRE_HTTPS is set and the URL is not https",
            )
        refused, proxy = await self._refusal(delivery.url)
        if refused:
            return self._failed(delivery, at, started, refused)
        headers = self.build_headers(delivery, int(time.time()))
        if traceparent:
            headers["traceparent"] = traceparent
        session, via, extra = self._route(proxy, delivery.url)
        headers.update(extra)
        if delivery.tls is not None:
            expired = delivery.tls.not_after
            if expired is not None and expired <= at:
                error = f"not sent: the client certificate expired at {expired.isoformat()}"
                return self._failed(delivery, at, started, error)
            via["ssl"] = self._tls_context(delivery)
        post = functools.partial(self._post, delivery, at, started, session, via, proxy)
        if delivery.oauth is None:
            return await post(headers)
        return await self._post_with_token(delivery, at, started, post, headers)

    async def _refusal(self, url: str) -> tuple[str | None, Proxy | None]:
        """Why a request to ``url`` may not go out (the network policy, before any proxy
        is asked), and the proxy it goes through."""
        verdict = self._verdicts.get(url)
        if verdict is None:
            host, port = _host_port(url)
            refused = _refused_literal(host, self.policy) if self.policy.checks else None
            if len(self._verdicts) >= VERDICTS_KEPT:
                self._verdicts.clear()
            verdict = self._verdicts[url] = (host, port, refused)
        host, port, refused = verdict
        if refused:
            return refused, None
        proxy = self.egress.proxy_for(host) if host else None
        if proxy is not None:
            return await self.egress.precheck(host, port), proxy
        return None, None

    async def _post(
        self,
        delivery: ClaimedDelivery,
        at: datetime,
        started: float,
        session: aiohttp.ClientSession,
        via: dict,
        proxy: Proxy | None,
        headers: dict[str, str],
    ) -> AttemptResult:
        try:
            async with session.post(
                delivery.url, data=delivery.payload, headers=headers, allow_redirects=False, **via
            ) as response:
                body = await response.content.read(self.response_max_bytes)
                status = response.status
                pushback = response.headers.get("Retry-After") if status in (429, 503) else None
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError, *SOCKS_ERRORS) as exc:
            at_proxy = proxy_failure(exc, proxy) if proxy is not None else None
            if at_proxy is None:
                return self._failed(delivery, at, started, self._problem(exc))
            error, its_fault = at_proxy
            return self._failed(delivery, at, started, error, fault="proxy" if its_fault else None)
        if status == 407 and proxy is not None and not proxy.is_socks:
            # Only a proxy answers 407: an http request forwarded by it was refused there.
            error = f"proxy error: the proxy {proxy.url} refused our credentials (407)"
            return self._failed(delivery, at, started, error, fault="proxy")
        return AttemptResult(
            delivery=delivery,
            at=at,
            status_code=status,
            response=_text(body.decode("utf-8", errors="replace")),
            duration_ms=_elapsed_ms(started),
            retry_after=retry_after_seconds(pushback, at, self.retry_after_max)
            if pushback
            else None,
        )

    async def _post_with_token(
        self,
        delivery: ClaimedDelivery,
        at: datetime,
        started: float,
        post: Callable[[dict[str, str]], Awaitable[AttemptResult]],
        headers: dict[str, str],
    ) -> AttemptResult:
        """The POST with the endpoint's OAuth2 access token; on a 401, once more with a new
        token (the receiver may have revoked the cached one)."""
        config = delivery.oauth
        key = (delivery.endpoint_id, config)
        # The token replaces any Authorization header the endpoint was given.
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        try:
            token = await self.tokens.get(key, lambda: self._fetch_token(config))
        except TokenError as exc:
            return self._failed(delivery, at, started, f"not sent: OAuth2 token request: {exc}")
        result = await post(headers | {"authorization": f"Bearer {token}"})
        if result.status_code != 401:
            return result
        try:
            token = await self.tokens.refresh(key, token, lambda: self._fetch_token(config))
        except TokenError as exc:
            error = f"401 with the cached token; OAuth2 token request for a new one: {exc}"
            return self._failed(delivery, at, started, error)
        return await post(headers | {"authorization": f"Bearer {token}"})

    async def _fetch_token(self, config: OAuthConfig) -> tuple[str, float]:
        """A token request through the same guard, network lists and proxy as deliveries."""
        url = config.token_url
        if not url.lower().startswith("https://") and (
            self.require_https or not self.policy.allow_private
        ):
            raise TokenError("the token URL must use https")
        refused, proxy = await self._refusal(url)
        if refused:
            raise TokenError(refused)
        session, via, extra = self._route(proxy, url)
        try:
            return await fetch_token(session, config, via | {"headers_extra": extra})
        except (aiohttp.ClientError, OSError, *SOCKS_ERRORS) as exc:
            at_proxy = proxy_failure(exc, proxy) if proxy is not None else None
            raise TokenError(at_proxy[0] if at_proxy else self._problem(exc)) from exc

    def _tls_context(self, delivery: ClaimedDelivery) -> ssl.SSLContext:
        """The endpoint's TLS context, built once per process for each set of credentials
        (the connection pool keys connections by it, so they are reused too)."""
        key = (delivery.endpoint_id, delivery.tls.key)
        context = self._tls_contexts.get(key)
        if context is None:
            if len(self._tls_contexts) >= 1000:
                self._tls_contexts.clear()
            context = self._tls_contexts[key] = client_context(delivery.tls)
        return context

    def _problem(self, exc: BaseException) -> str:
        """The attempt's error text for what the request raised."""
        tls = tls_problem(exc)
        if tls:
            return tls
        if isinstance(exc, TimeoutError):
            return f"timed out after {self.timeout:g} s (no response)"
        if isinstance(exc, aiohttp.InvalidURL):
            return "invalid URL"
        if isinstance(exc, aiohttp.ClientConnectorError):
            blocked = blocked_reason(exc)
            if blocked:
                return blocked
            reason = exc.os_error.strerror or str(exc.os_error)
            return f"connection failed: {exc.host}:{exc.port}: {reason}"
        return f"{type(exc).__name__}: {exc}"[:500]

    @staticmethod
    def _failed(
        delivery: ClaimedDelivery,
        at: object,
        started: float,
        error: str,
        fault: str | None = None,
    ) -> AttemptResult:
        return AttemptResult(
            delivery=delivery,
            at=at,  # type: ignore[arg-type]
            status_code=0,
            response="",
            duration_ms=_elapsed_ms(started),
            error=_text(error),
            fault=fault,
        )


def _host_port(url: str) -> tuple[str, int]:
    try:
        parsed = URL(url)
        return parsed.host or "", parsed.port or 0
    except ValueError:
        return "", 0  # aiohttp reports the invalid URL itself


def _refused_literal(host: str, policy: NetworkPolicy) -> str | None:
    """The guard's verdict on a host that is an address literal (aiohttp connects to
    those without asking the resolver)."""
    addr = literal_address(host)
    if addr is None:
        return None
    try:
        check_address(host, addr, policy)
    except BlockedAddress as exc:
        return str(exc)
    return None


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _text(value: str) -> str:
    """Text PostgreSQL can store: a NUL character (a receiver may answer with one) would
    fail the whole batch of attempts it is recorded with."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value
