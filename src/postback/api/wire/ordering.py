"""Wire models of an ordered endpoint's key heads (docs/architecture.md, "Ordered
delivery"): postback's own, Svix has no ordered delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from postback.api.wire.common import Wire


class OrderingKeyIn(Wire):
    # The key whose head to act on; absent: the endpoint's shared key (messages sent
    # without an orderingKey).
    ordering_key: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class OrderingHeadOut(Wire):
    """One key's head: the delivery its later messages wait behind."""

    ordering_key: str | None
    msg_id: str
    status: int
    status_text: str
    attempts: int
    next_attempt: datetime | None
    waiting_since: datetime
    # Set when it was skipped: who skipped it, and when.
    note: str | None = None


class OrderingHeadsOut(Wire):
    data: list[OrderingHeadOut]


class OrderingSummaryOut(Wire):
    """postback's own, on an ordered endpoint read alone (GET …/endpoint/{endpoint_id}):
    how many of its ordering keys are blocked (their head was tried and not delivered) and
    since when the longest-blocked one is (its head's first attempt; null when none is).
    The keys themselves: GET …/endpoint/{endpoint_id}/ordering."""

    blocked_keys: int
    oldest_blocked_since: datetime | None = None
