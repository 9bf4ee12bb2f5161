"""Rate limits (``throttleRate`` deliveries per second) of endpoints and of applications,
shared by every worker process through the database.

Each limited endpoint keeps ``rate_next_at``, the next free send slot (a GCRA schedule with
no burst). A claim reserves one slot per claimed delivery under a row lock on the endpoint;
a delivery whose slot is in the future goes back to the queue, due at that slot and marked
``rate_slot`` so it is sent then without reserving again. Other endpoints are not touched, so
a slow limit never holds up anyone else's deliveries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback.domain import MessageStatus
from postback.store import schema as t
from postback.store.core import StoreCore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


class RateLimitMixin(StoreCore):
    async def _reserve_rate_slots(
        self, conn: AsyncConnection, rows: Sequence[Any], now: datetime, lease: str
    ) -> set[str]:
        """Reserve a send slot for each claimed delivery to a rate-limited endpoint or
        application (an application's throttleRate bounds all of its endpoints together);
        returns the ids of those postponed to a later slot (handed back to the queue)."""
        limited = [r for r in rows if (r.throttle_rate or r.app_throttle_rate) and not r.rate_slot]
        if not limited:
            return set()
        e, a, d = t.endpoints.c, t.applications.c, t.deliveries.c
        ep_ids = sorted({r.endpoint_id for r in limited if r.throttle_rate})
        app_ids = sorted({r.app_id for r in limited if r.app_throttle_rate})
        ep_next: dict[str, datetime | None] = {}
        app_next: dict[str, datetime | None] = {}
        # Serialises slot-taking across workers (endpoints first, then applications, each in
        # id order), without waiting for inserts referencing them (Backend.lock_rows).
        if ep_ids:
            stmt = sa.select(e.id, e.rate_next_at).where(e.id.in_(ep_ids)).order_by(e.id)
            stmt = self.backend.lock_rows(stmt)
            ep_next = {r.id: r.rate_next_at for r in await conn.execute(stmt)}
        if app_ids:
            stmt = sa.select(a.id, a.rate_next_at).where(a.id.in_(app_ids)).order_by(a.id)
            stmt = self.backend.lock_rows(stmt)
            app_next = {r.id: r.rate_next_at for r in await conn.execute(stmt)}
        postponed: list[dict[str, Any]] = []
        for r in limited:
            slot = now
            if r.throttle_rate and r.endpoint_id in ep_next:
                slot = max(slot, ep_next[r.endpoint_id] or now)
            if r.app_throttle_rate and r.app_id in app_next:
                slot = max(slot, app_next[r.app_id] or now)
            if r.throttle_rate and r.endpoint_id in ep_next:
                ep_next[r.endpoint_id] = slot + timedelta(seconds=1 / r.throttle_rate)
            if r.app_throttle_rate and r.app_id in app_next:
                app_next[r.app_id] = slot + timedelta(seconds=1 / r.app_throttle_rate)
            if slot > now:
                postponed.append({"b_id": r.id, "b_msg": r.msg_id, "b_slot": slot})
        if ep_next:
            await conn.execute(
                t.endpoints.update()
                .where(e.id == sa.bindparam("b_ep"))
                .values(rate_next_at=sa.bindparam("b_next")),
                [{"b_ep": k, "b_next": at} for k, at in ep_next.items()],
            )
        if app_next:
            await conn.execute(
                t.applications.update()
                .where(a.id == sa.bindparam("b_app"))
                .values(rate_next_at=sa.bindparam("b_next")),
                [{"b_app": k, "b_next": at} for k, at in app_next.items()],
            )
        if postponed:
            await conn.execute(
                t.deliveries.update()
                # Its message's id too: one partition's key, not every partition's.
                .where(
                    d.id == sa.bindparam("b_id"),
                    d.msg_id == sa.bindparam("b_msg"),
                    d.lease == lease,
                )
                .values(
                    status=MessageStatus.PENDING,
                    next_attempt_at=sa.bindparam("b_slot"),
                    lease=None,
                    rate_slot=True,
                ),
                postponed,
            )
        return {p["b_id"] for p in postponed}
