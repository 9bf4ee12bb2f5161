"""OrderingMixin: an ordered endpoint's key heads (docs/architecture.md, "Ordered
delivery"): listed, retried now, or skipped (recorded on the delivery: who and when)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback.domain import MessageStatus
from postback.store import heads
from postback.store import schema as t
from postback.store.core import StoreCore
from postback.store.errors import Conflict, NotFound

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
_d, _m = t.deliveries.c, t.messages.c
_UNFINISHED = (MessageStatus.PENDING, MessageStatus.SENDING)
_HEAD_COLUMNS = (
    _d.id,
    _d.msg_id,
    _d.ordering_key,
    _d.status,
    _d.attempt_count,
    sa.func.coalesce(_d.next_attempt_at, _d.wake_at).label("next_attempt_at"),
    _d.created_at,
    _d.updated_at,
)


class OrderingMixin(StoreCore):
    async def ordering_heads(self, app_id: str, endpoint_id: str, limit: int = 100) -> list[Row]:
        """Each key's head (its first unfinished delivery), the longest-waiting first; at
        most ``limit``. A management read: it reads every unfinished delivery of the
        endpoint, unlike the claim, which descends the index once per key."""
        async with self.engine.connect() as conn:
            ep = await self._get_endpoint(conn, app_id, endpoint_id)
            place = sa.func.row_number().over(
                partition_by=_d.ordering_key, order_by=(_d.seq, _d.id)
            )
            ranked = (
                sa.select(*_HEAD_COLUMNS, place.label("place"))
                .where(
                    _d.endpoint_id == ep["id"],
                    _d.ordering_key.is_not(None),
                    _d.status.in_(_UNFINISHED),
                )
                .subquery()
            )
            stmt = (
                sa.select(*(c for c in ranked.c if c.name != "place"))
                .where(ranked.c.place == 1)
                .order_by(ranked.c.created_at, ranked.c.id)
                .limit(limit)
            )
            return [dict(r._mapping) for r in await conn.execute(stmt)]

    async def retry_head(self, app_id: str, endpoint_id: str, key: str) -> Row:
        """Make ``key``'s head due now (its retry schedule goes on where it was). Conflict
        if it is in flight or its endpoint is disabled."""
        now = self.clock()
        async with self.engine.begin() as conn:
            ep, head = await self._head(conn, app_id, endpoint_id, key)
            if ep["disabled"]:
                raise Conflict("the endpoint is disabled: enable it to send its deliveries")
            await self._move_head(conn, head, now, next_attempt_at=now, wake_at=None)
            await self._announce_work(conn)
        self._notify_work()
        return head | {"next_attempt_at": now}

    async def skip_head(self, app_id: str, endpoint_id: str, key: str, who: str) -> Row:
        """Give up ``key``'s head: it is canceled, with who skipped it and when in its
        note, and the key's next delivery becomes its head. Conflict if it is in flight."""
        now = self.clock()
        note = f"skipped by {who} at {now.isoformat()}"
        async with self.engine.begin() as conn:
            _, head = await self._head(conn, app_id, endpoint_id, key)
            await self._move_head(
                conn,
                head,
                now,
                status=MessageStatus.CANCELED,
                next_attempt_at=None,
                wake_at=None,
                lease=None,
                note=note,
            )
            await heads.promote(conn, [head["id"]])  # the key's next delivery
            await self._announce_work(conn)
        self._notify_work()
        return head | {"status": MessageStatus.CANCELED, "note": note, "next_attempt_at": None}

    async def _head(
        self, conn: AsyncConnection, app_id: str, endpoint_id: str, key: str
    ) -> tuple[Row, Row]:
        ep = await self._get_endpoint(conn, app_id, endpoint_id)
        if not ep["ordered"]:
            raise Conflict("the endpoint is not ordered: its deliveries have no heads")
        stmt = (
            sa.select(*_HEAD_COLUMNS)
            .where(
                _d.endpoint_id == ep["id"],
                _d.ordering_key == key,
                _d.status.in_(_UNFINISHED),
            )
            .order_by(_d.seq, _d.id)
            .limit(1)
        )
        head = (await conn.execute(stmt)).first()
        if head is None:
            raise NotFound(f"no delivery of ordering key {key!r} is waiting")
        return ep, dict(head._mapping)

    async def _move_head(self, conn: AsyncConnection, head: Row, now: Any, **values: Any) -> None:
        """Update the head unless a worker holds it (a live claim): then Conflict. A
        lapsed claim (its worker died) may be moved."""
        in_hand = sa.and_(_d.status == MessageStatus.SENDING, _d.next_attempt_at > now)
        done = await conn.execute(
            t.deliveries.update()
            .where(
                _d.id == head["id"],
                _d.msg_id == head["msg_id"],
                _d.status.in_(_UNFINISHED),
                sa.not_(in_hand),
            )
            .values(**values, updated_at=now)
        )
        if done.rowcount == 0:
            raise Conflict("the head is being sent now: try again when its attempt ends")
