"""Figures read at scrape time for /metrics: they describe the database, so every API process
reports the same values, whichever worker did the work.

A scrape comes every few seconds for as long as postback runs, so these queries read only
what is live: the deliveries in the partial queue index (``next_attempt_at IS NOT NULL``).
Finished deliveries, however many, are not scanned. (Deliveries parked behind a disabled
endpoint are outside that index; counting them means reading the endpoint's whole history,
so they are left to ``postback check``.)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from postback.delivery.scheduler import Circuit
from postback.domain import MessageStatus
from postback.store import schema as t
from postback.store.core import StoreCore

STUCK_AFTER = timedelta(seconds=60)  # a lease this far past its end is counted as stuck


class MetricsQueriesMixin(StoreCore):
    async def queue_gauges(self) -> dict[str, Any]:
        """Deliveries due, scheduled, being sent and stuck, how late the oldest due one is
        that nothing holds back on purpose (seconds; 0 when none is due), the number of
        disabled endpoints, of enabled ones whose circuit is open or half-open, and of those
        a Retry-After holds back now."""
        now = self.clock()
        d = t.deliveries.c
        pending, sending = d.status == MessageStatus.PENDING, d.status == MessageStatus.SENDING
        due = sa.and_(pending, d.next_attempt_at <= now)

        def count(cond: Any) -> Any:
            return sa.func.count().filter(cond)

        e = t.endpoints.c
        # Deliveries an open circuit or a Retry-After holds back are due but not late: one
        # customer's outage, shown by its own gauges, not the queue falling behind.
        held = (e.circuit_state != 0) | (e.paused_until.is_not(None) & (e.paused_until > now))
        live = (
            sa.select(
                count(due).label("due"),
                count(sa.and_(pending, d.next_attempt_at > now)).label("scheduled"),
                count(sending).label("sending"),
                count(sa.and_(sending, d.next_attempt_at < now - STUCK_AFTER)).label("stuck"),
                sa.func.min(d.next_attempt_at).filter(due, ~held).label("oldest_due"),
            )
            .select_from(t.deliveries.join(t.endpoints, e.id == d.endpoint_id))
            .where(d.next_attempt_at.is_not(None))
        )
        enabled = e.disabled.is_(False)
        # One pass over the endpoints, as small a table as the dashboard's lists of them. A
        # disabled endpoint's breaker is frozen (nothing is sent to it), so it is not counted.
        endpoints = sa.select(
            count(e.disabled.is_(True)).label("disabled_endpoints"),
            count(sa.and_(enabled, e.circuit_state == int(Circuit.OPEN))).label("open_circuits"),
            count(sa.and_(enabled, e.circuit_state == int(Circuit.HALF_OPEN))).label(
                "half_open_circuits"
            ),
            count(sa.and_(enabled, e.paused_until > now)).label("paused_endpoints"),
        )
        # Parked deliveries (due later than PARK_AHEAD) are scheduled too, out of that index.
        parked = sa.select(sa.func.count()).where(
            d.wake_at.is_not(None), d.status == MessageStatus.PENDING
        )
        async with self.engine.connect() as conn:
            gauges = dict((await conn.execute(live)).one()._mapping)
            gauges["scheduled"] += int(await conn.scalar(parked) or 0)
            counts = (await conn.execute(endpoints)).one()._mapping
            gauges |= {k: int(v or 0) for k, v in counts.items()}
        oldest = gauges.pop("oldest_due")
        gauges["oldest_due_seconds"] = (now - oldest).total_seconds() if oldest else 0.0
        return gauges
