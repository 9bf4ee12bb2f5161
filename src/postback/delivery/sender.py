"""One webhook POST: signed headers, a timeout, no redirects, the response captured."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from postback.delivery.scheduler import retry_after_seconds
from postback.delivery.ssrf import (
    BlockedAddress,
    GuardedResolver,
    blocked_reason,
    check_address,
    literal_address,
)
from postback.domain import AttemptResult, ClaimedDelivery, utcnow
from postback.signing import signature_header


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
    ) -> None:
        self.timeout = timeout
        self.retry_after_max = retry_after_max
        self.require_https = require_https
        self.allow_private_networks = allow_private_networks
        self._resolver = resolver
        self.response_max_bytes = response_max_bytes
        self.user_agent = user_agent
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            resolver = self._resolver
            if not self.allow_private_networks:
                resolver = GuardedResolver(resolver)
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                ttl_dns_cache=60,
                enable_cleanup_closed=True,
                resolver=resolver,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Content-Type"),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        if not self.allow_private_networks:
            refused = _refused_literal(delivery.url)
            if refused:
                return self._failed(delivery, at, started, refused)
        headers = self.build_headers(delivery, int(time.time()))
        if traceparent:
            headers["traceparent"] = traceparent
        try:
            async with self._session.post(
                delivery.url, data=delivery.payload, headers=headers, allow_redirects=False
            ) as response:
                body = await response.content.read(self.response_max_bytes)
                status = response.status
                pushback = response.headers.get("Retry-After") if status in (429, 503) else None
        except TimeoutError:
            return self._failed(
                delivery, at, started, f"timed out after {self.timeout:g} s (no response)"
            )
        except aiohttp.InvalidURL:
            return self._failed(delivery, at, started, "invalid URL")
        except aiohttp.ClientConnectorError as exc:
            blocked = blocked_reason(exc)
            if blocked:
                return self._failed(delivery, at, started, blocked)
            reason = exc.os_error.strerror or str(exc.os_error)
            return self._failed(
                delivery, at, started, f"connection failed: {exc.host}:{exc.port}: {reason}"
            )
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            return self._failed(delivery, at, started, f"{type(exc).__name__}: {exc}"[:500])
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

    @staticmethod
    def _failed(delivery: ClaimedDelivery, at: object, started: float, error: str) -> AttemptResult:
        return AttemptResult(
            delivery=delivery,
            at=at,  # type: ignore[arg-type]
            status_code=0,
            response="",
            duration_ms=_elapsed_ms(started),
            error=_text(error),
        )


def _refused_literal(url: str) -> str | None:
    """The guard's verdict on a URL whose host is an address literal (aiohttp connects to
    those without asking the resolver)."""
    try:
        host = URL(url).host or ""
    except ValueError:
        return None  # aiohttp reports the invalid URL itself
    addr = literal_address(host)
    if addr is None:
        return None
    try:
        check_address(host, addr)
    except BlockedAddress as exc:
        return str(exc)
    return None


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _text(value: str) -> str:
    """Text PostgreSQL can store: a NUL character (a receiver may answer with one) would
    fail the whole batch of attempts it is recorded with."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value
