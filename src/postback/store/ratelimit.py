"""Per-endpoint rate limits (``throttleRate`` deliveries per second), shared by every worker
process through the database.

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

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


class RateLimitMixin:
    dialect: str

    async def _reserve_rate_slots(
        self, conn: AsyncConnection, rows: Sequence[Any], now: datetime, lease: str
    ) -> set[str]:
        """Reserve a send slot for each claimed delivery to a rate-limited endpoint; returns
        the ids of those postponed to a later slot (handed back to the queue)."""
        limited = [r for r in rows if r.throttle_rate and not r.rate_slot]
        if not limited:
            return set()
        e, d = t.endpoints.c, t.deliveries.c
        ep_ids = sorted({r.endpoint_id for r in limited})
        stmt = sa.select(e.id, e.rate_next_at).where(e.id.in_(ep_ids)).order_by(e.id)
        if self.dialect == "postgresql":
            # Serialises slot-taking across workers. NO KEY UPDATE: it must not wait for the
            # KEY SHARE locks that inserting attempts and deliveries take on the endpoint.
            stmt = stmt.with_for_update(key_share=True)
        next_free = {r.id: r.rate_next_at for r in await conn.execute(stmt)}
        postponed: list[dict[str, Any]] = []
        for r in limited:
            slot = max(now, next_free[r.endpoint_id] or now)
            next_free[r.endpoint_id] = slot + timedelta(seconds=1 / r.throttle_rate)
            if slot > now:
                postponed.append({"b_id": r.id, "b_slot": slot})
        await conn.execute(
            t.endpoints.update()
            .where(e.id == sa.bindparam("b_ep"))
            .values(rate_next_at=sa.bindparam("b_next")),
            [{"b_ep": ep, "b_next": at} for ep, at in next_free.items()],
        )
        if postponed:
            await conn.execute(
                t.deliveries.update()
                .where(d.id == sa.bindparam("b_id"), d.lease == lease)
                .values(
                    status=MessageStatus.PENDING,
                    next_attempt_at=sa.bindparam("b_slot"),
                    lease=None,
                    rate_slot=True,
                ),
                postponed,
            )
        return {p["b_id"] for p in postponed}
