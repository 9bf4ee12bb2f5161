"""Worker liveness: heartbeats, claims a live worker keeps, claims a dead one hands on.

A claim carries the claiming worker's id. While the worker beats, it extends its claims
before they end, so a slow receiver (or a claim waiting for a sender) never loses its
claim to another worker. A worker that stopped beating for ``dead_after`` seconds (kill -9,
OOM, a lost machine) is dead: the first live worker to notice makes its claims due at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from postback.domain import MessageStatus
from postback.store import schema as t
from postback.store.core import StoreCore

if TYPE_CHECKING:
    pass


class LivenessMixin(StoreCore):
    def _server_now(self) -> sa.ColumnElement[datetime] | datetime:
        """Heartbeats compare times written by different machines: one clock for all
        (Backend.server_now)."""
        return self.backend.server_now(self.clock())

    async def heartbeat(
        self, worker: str, host: str, pid: int, lease_seconds: float, dead_after: float
    ) -> int:
        """One beat of ``worker``: it is alive, its claims ending within half a lease are
        extended by a lease, and the claims of workers silent for ``dead_after`` seconds
        become due now. Returns how many claims were handed on."""
        w, d = t.workers.c, t.deliveries.c
        now = self.clock()
        beat = self._server_now()
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                t.workers.update().where(w.id == worker).values(heartbeat_at=beat)
            )
            if not updated.rowcount:
                await conn.execute(
                    t.workers.insert().values(
                        id=worker, host=host[:256], pid=pid, started_at=beat, heartbeat_at=beat
                    )
                )
            await conn.execute(
                t.deliveries.update()
                .where(
                    d.status == MessageStatus.SENDING,
                    d.worker == worker,
                    d.next_attempt_at < now + timedelta(seconds=lease_seconds / 2),
                )
                .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
            )
        return await self._hand_on_claims_of_dead(dead_after)

    async def _hand_on_claims_of_dead(self, dead_after: float) -> int:
        w, d = t.workers.c, t.deliveries.c
        limit = self._server_now() - timedelta(seconds=dead_after)
        async with self.engine.begin() as conn:
            dead = list(await conn.scalars(sa.select(w.id).where(w.heartbeat_at < limit)))
            if not dead:
                return 0
            moved = await conn.execute(
                t.deliveries.update()
                .where(d.status == MessageStatus.SENDING, d.worker.in_(dead))
                .values(next_attempt_at=self.clock())
            )
            await conn.execute(t.workers.delete().where(w.id.in_(dead)))
            if moved.rowcount:
                await self._announce_work(conn)
        if moved.rowcount:
            self._notify_work()
        return int(moved.rowcount or 0)

    async def forget_worker(self, worker: str) -> None:
        """A worker that stopped cleanly (its claims were recorded or handed back)."""
        async with self.engine.begin() as conn:
            await conn.execute(t.workers.delete().where(t.workers.c.id == worker))

    async def live_workers(self) -> list[dict[str, object]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(t.workers).order_by(t.workers.c.started_at))
            return [dict(r._mapping) for r in rows]
