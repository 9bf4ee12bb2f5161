"""Figures read at scrape time for /metrics: they describe the database, so every API process
reports the same values, whichever worker did the work.

A scrape comes every few seconds for as long as postback runs, so these queries read only
what is live: the deliveries in the partial due index (``next_attempt_at IS NOT NULL``).
Finished deliveries, however many, are not scanned. (Deliveries parked behind a disabled
endpoint are outside that index; counting them means reading the endpoint's whole history,
so they are left to ``postback check``.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from postback.domain import MessageStatus
from postback.store import schema as t

STUCK_AFTER = timedelta(seconds=60)  # a lease this far past its end is counted as stuck


class MetricsQueriesMixin:
    engine: AsyncEngine
    clock: Callable[[], datetime]

    async def queue_gauges(self) -> dict[str, Any]:
        """Deliveries due, scheduled, being sent and stuck, how late the oldest due one is
        (seconds; 0 when none is due), and the number of disabled endpoints."""
        now = self.clock()
        d = t.deliveries.c
        pending, sending = d.status == MessageStatus.PENDING, d.status == MessageStatus.SENDING
        due = sa.and_(pending, d.next_attempt_at <= now)

        def count(cond: Any) -> Any:
            return sa.func.count().filter(cond)

        live = sa.select(
            count(due).label("due"),
            count(sa.and_(pending, d.next_attempt_at > now)).label("scheduled"),
            count(sending).label("sending"),
            count(sa.and_(sending, d.next_attempt_at < now - STUCK_AFTER)).label("stuck"),
            sa.func.min(d.next_attempt_at).filter(due).label("oldest_due"),
        ).where(d.next_attempt_at.is_not(None))
        disabled = sa.select(sa.func.count()).where(t.endpoints.c.disabled.is_(True))
        async with self.engine.connect() as conn:
            gauges = dict((await conn.execute(live)).one()._mapping)
            gauges["disabled_endpoints"] = int(await conn.scalar(disabled) or 0)
        oldest = gauges.pop("oldest_due")
        gauges["oldest_due_seconds"] = (now - oldest).total_seconds() if oldest else 0.0
        return gauges
