"""Types shared by every layer: statuses, the retry schedule, endpoint matching."""

from __future__ import annotations

import enum
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson


def utcnow() -> datetime:
    return datetime.now(UTC)


class MessageStatus(enum.IntEnum):
    """Status of a message for one endpoint (a delivery), and of one attempt (Svix's enum)."""

    SUCCESS = 0
    PENDING = 1
    FAIL = 2
    SENDING = 3
    CANCELED = 4

    @property
    def text(self) -> str:
        return self.name.lower()


class TriggerType(enum.IntEnum):
    SCHEDULED = 0
    MANUAL = 1
    # postback's own: a delivery queued again by recover. It runs on the retry schedule like
    # a scheduled one; the API shows it as one (Svix's triggerType has only 0 and 1).
    RECOVER = 2

    @property
    def follows_schedule(self) -> bool:
        """Retried on the schedule (a manual resend is one extra try)."""
        return self is not TriggerType.MANUAL

    @property
    def wire(self) -> int:
        return int(TriggerType.MANUAL if self is TriggerType.MANUAL else TriggerType.SCHEDULED)

    @property
    def text(self) -> str:
        """postback's own name of it, recovery included (an attempt's ``trigger``)."""
        return "recovery" if self is TriggerType.RECOVER else self.name.lower()


# A delivery due further ahead than this is parked (store/schema.py, deliveries): it waits
# out of the index claims walk until a worker moves it back, PARK_AHEAD before it is due.
PARK_AHEAD = timedelta(seconds=60)


def queue_times(due: datetime | None, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``(next_attempt_at, wake_at)`` for a pending delivery due at ``due``: parked when
    that is more than PARK_AHEAD away."""
    if due is None or due <= now + PARK_AHEAD:
        return due, None
    return None, due


@dataclass(frozen=True)
class RetrySchedule:
    """Waits after each failed attempt. ``len(waits) + 1`` attempts in all. Each wait is
    stretched by a random share of up to ``jitter`` of itself (POSTBACK_RETRY_JITTER), so
    deliveries that failed together do not all retry at the same instant."""

    waits: tuple[float, ...]
    jitter: float = 0.0

    @property
    def max_attempts(self) -> int:
        return len(self.waits) + 1

    def next_attempt_at(self, attempts_made: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts_made`` scheduled attempts failed; None when
        the schedule is exhausted."""
        if attempts_made < 1 or attempts_made > len(self.waits):
            return None
        wait = self.waits[attempts_made - 1]
        if self.jitter > 0:
            wait *= 1 + random.random() * self.jitter
        return now + timedelta(seconds=wait)


def endpoint_wants(
    event_types: Sequence[str] | None,
    channels: Sequence[str] | None,
    msg_event_type: str,
    msg_channels: Sequence[str] | None,
) -> bool:
    """Whether an endpoint subscribed to ``event_types``/``channels`` gets this message.

    No event types means every event type. An endpoint with channels only gets messages
    that carry one of them; an endpoint without channels gets every message.
    """
    if event_types and msg_event_type not in event_types:
        return False
    return not channels or bool(msg_channels and set(channels).intersection(msg_channels))


# The worker makes one of each per delivery: named tuples (immutable, like the frozen
# dataclasses they were, and cheaper to construct: docs/performance.md).
class ClaimedDelivery(NamedTuple):
    """Everything the worker needs to make one attempt, read in the claim's round trip."""

    delivery_id: str
    lease: str
    msg_id: str
    app_id: str
    endpoint_id: str
    url: str
    secrets: tuple[Any, ...]  # signing.SigningKey: HMAC key bytes or an ed25519 key
    headers: dict[str, str]
    payload: bytes
    attempt_count: int
    trigger: TriggerType
    # Credentials toward the receiver (postback.credentials): a TLS client certificate
    # and CA bundle, OAuth2 client credentials; None for most endpoints.
    tls: Any = None
    oauth: Any = None
    # The message's W3C traceparent (its ingest span, or the caller's): attempts join it.
    trace_context: str | None = None


class AttemptResult(NamedTuple):
    """What one HTTP attempt produced; the worker records it with its delivery."""

    delivery: ClaimedDelivery
    at: datetime
    status_code: int  # 0 when no HTTP response arrived
    response: str
    duration_ms: int
    error: str | None = None
    # Seconds a 429 or 503 asked us to wait (Retry-After, already bounded), else None.
    retry_after: float | None = None
    # Set when the failure was not the receiver's but postback's own infrastructure's
    # ("proxy": the egress proxy): it is recorded, retried, and kept out of the endpoint's
    # health (circuit breaker, auto-disable clock).
    fault: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code <= 299


Json = dict[str, Any]


def encode_json(value: Any) -> bytes:
    """Compact JSON bytes. orjson is fast but stops at 64-bit integers, which JSON itself
    does not: the standard library takes those rare payloads."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


_LONG_NUMBER = re.compile(rb"\d{19}")


def decode_json(raw: bytes) -> Any:
    """Parse stored JSON bytes. orjson reads integers past 64 bits as floats (losing
    digits); the standard library keeps them, and takes the rare payload that may hold one."""
    return json.loads(raw) if _LONG_NUMBER.search(raw) else orjson.loads(raw)
