"""Delivery history as the API reads it (attempts, a message's destinations, an
endpoint's messages and counts) and manual resends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback import ids, reasons
from postback.domain import MessageStatus, TriggerType, decode_json
from postback.filters import project
from postback.store import heads
from postback.store import schema as t
from postback.store.core import StoreCore
from postback.store.errors import NotFound
from postback.store.pages import Page, PageOut, page_out, paged
from postback.store.routing import why_not

Row = dict[str, Any]
# When a delivery is next tried, parked or not (store/schema.py, deliveries).
_next_attempt_at = sa.func.coalesce(t.deliveries.c.next_attempt_at, t.deliveries.c.wake_at).label(
    "next_attempt_at"
)


class HistoryMixin(StoreCore):
    if TYPE_CHECKING:  # messages.py's, declared for the type checker only

        def _filter_messages(self, stmt: Any, *filters: Any) -> Any: ...

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str) -> None:
        """Queue one manual attempt of a message to an endpoint, now."""
        now = self.clock()
        async with self.engine.begin() as conn:
            await self.backend.hold_partition_drops(conn)  # an old message may be sent again
            msg = await self._get_message(conn, app_id, msg_id, lock=True)
            ep = await self._get_endpoint(conn, app_id, endpoint_id)
            d = t.deliveries.c
            found = (
                await conn.execute(
                    sa.select(d.id, d.status).where(
                        d.msg_id == msg["id"], d.endpoint_id == ep["id"]
                    )
                )
            ).first()
            values = {
                "status": MessageStatus.PENDING,
                "trigger_type": TriggerType.MANUAL,
                "next_attempt_at": now,
                "wake_at": None,
                "lease": None,
                "updated_at": now,
            }
            if ep["ordered"] and (found is None or found.status not in _UNFINISHED):
                key = msg["ordering_key"] or ""
                values |= _back_of_key(ep["id"], key)
                # At the back of its key: the head only when nothing of the key waits.
                seat = {"endpoint_id": ep["id"], "ordering_key": key, "status": values["status"]}
                await heads.seat_new(conn, [seat])
                values["head"] = seat["head"]
            elif found is None or found.status not in _UNFINISHED:
                values["head"] = False
            if found is None:
                projected = None
                if ep["projection"] and msg["payload"]:
                    projected = project(decode_json(msg["payload"]), ep["projection"])
                await conn.execute(
                    t.deliveries.insert().values(
                        id=ids.new_id(ids.DELIVERY),
                        msg_id=msg["id"],
                        endpoint_id=ep["id"],
                        app_id=app_id,
                        attempt_count=0,
                        created_at=now,
                        payload=projected,
                        **values,
                    )
                )
            else:
                await conn.execute(
                    t.deliveries.update()
                    .where(d.id == found.id, d.msg_id == msg["id"])
                    .values(**values)
                )
            await self._announce_work(conn)
        self._notify_work()

    async def list_attempts(
        self,
        app_id: str,
        page: Page,
        *,
        msg_id: str | None = None,
        endpoint_id: str | None = None,
        status: int | None = None,
        status_code_class: int | None = None,
        event_types: Sequence[str] | None = None,
        channel: str | None = None,
        before: datetime | None = None,
        after: datetime | None = None,
    ) -> PageOut:
        a, m = t.attempts.c, t.messages.c
        stmt = sa.select(t.attempts).where(a.app_id == app_id)
        async with self.engine.connect() as conn:
            if msg_id is not None:
                msg = await self._get_message(conn, app_id, msg_id)
                stmt = stmt.where(a.msg_id == msg["id"])
            if endpoint_id is not None:
                ep = await self._get_endpoint(conn, app_id, endpoint_id)
                stmt = stmt.where(a.endpoint_id == ep["id"])
            if status is not None:
                stmt = stmt.where(a.status == status)
            if status_code_class is not None:
                low = status_code_class
                stmt = stmt.where(
                    a.response_status_code == 0
                    if low == 0
                    else a.response_status_code.between(low, low + 99)
                )
            if event_types or channel:
                sub = sa.select(m.id).where(m.app_id == app_id)
                if event_types:
                    sub = sub.where(m.event_type.in_(list(event_types)))
                if channel:
                    sub = sub.where(self.backend.json_list_has(m.channels, channel))
                stmt = stmt.where(a.msg_id.in_(sub))
            if before:
                stmt = stmt.where(a.created_at < before)
            if after:
                stmt = stmt.where(a.created_at > after)
            rows = (await conn.execute(paged(stmt, a.id, page))).all()
        return page_out(rows, "id", page)

    async def get_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> Row:
        a = t.attempts.c
        async with self.engine.connect() as conn:
            msg = await self._get_message(conn, app_id, msg_id)
            row = (
                await conn.execute(
                    sa.select(t.attempts).where(
                        a.app_id == app_id, a.msg_id == msg["id"], a.id == attempt_id
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"attempt {attempt_id!r} not found")
        return dict(row._mapping)

    async def list_destinations(self, app_id: str, msg_id: str, page: Page) -> PageOut:
        """Every endpoint of the application with what became of the message there: its
        delivery's status, or (canceled, no delivery) the reason it did not go there."""
        d, e = t.deliveries.c, t.endpoints.c
        async with self.engine.connect() as conn:
            msg = await self._get_message(conn, app_id, msg_id)
            joined = t.endpoints.outerjoin(
                t.deliveries, sa.and_(d.endpoint_id == e.id, d.msg_id == msg["id"])
            )
            stmt = (
                sa.select(
                    t.endpoints, d.id.label("delivery_id"), d.status, _next_attempt_at, d.note
                )
                .select_from(joined)
                .where(e.app_id == msg["app_id"])
            )
            rows = (await conn.execute(paged(stmt, e.id, page))).all()
        out = page_out(rows, "id", page)
        for row in out.rows:
            if row["delivery_id"] is None:
                row.update(status=MessageStatus.CANCELED, reason=why_not(row, msg))
            elif row["note"] is not None:
                row["reason"] = reasons.filter_note(row["note"])
            else:
                row["reason"] = None
        return out

    async def list_attempted_messages(
        self,
        app_id: str,
        endpoint_id: str,
        page: Page,
        *,
        status: int | None = None,
        event_types: Sequence[str] | None = None,
        channel: str | None = None,
        tag: str | None = None,
        before: datetime | None = None,
        after: datetime | None = None,
    ) -> PageOut:
        """The messages sent (or being sent) to an endpoint, each with its delivery status."""
        d, m = t.deliveries.c, t.messages.c
        async with self.engine.connect() as conn:
            ep = await self._get_endpoint(conn, app_id, endpoint_id)
            stmt = (
                sa.select(t.messages, d.status, _next_attempt_at)
                .join(t.deliveries, d.msg_id == m.id)
                .where(d.endpoint_id == ep["id"])
            )
            if status is not None:
                stmt = stmt.where(d.status == status)
            stmt = self._filter_messages(stmt, event_types, channel, tag, before, after)
            rows = (await conn.execute(paged(stmt, m.id, page))).all()
        return page_out(rows, "id", page)

    async def endpoint_stats(
        self, app_id: str, endpoint_id: str, since: datetime | None, until: datetime | None
    ) -> dict[str, int]:
        d = t.deliveries.c
        async with self.engine.connect() as conn:
            ep = await self._get_endpoint(conn, app_id, endpoint_id)
            stmt = (
                sa.select(d.status, sa.func.count())
                .where(d.endpoint_id == ep["id"])
                .group_by(d.status)
            )
            if since:
                stmt = stmt.where(d.created_at >= since)
            if until:
                stmt = stmt.where(d.created_at < until)
            counts = {MessageStatus(s).text: n for s, n in await conn.execute(stmt)}
        return {s.text: counts.get(s.text, 0) for s in MessageStatus}

    async def endpoint_attempt_stats(
        self, app_id: str, endpoint_id: str, since: datetime | None, until: datetime | None
    ) -> dict[str, int]:
        """The endpoint's attempts in ``[since, until)`` by outcome (Svix's attempt-stats:
        success, fail, canceled). Ids sort by time: the bounds are ranges of the
        (endpoint_id, id) index, with the exact times checked beside them."""
        a = t.attempts.c
        async with self.engine.connect() as conn:
            ep = await self._get_endpoint(conn, app_id, endpoint_id)
            stmt = (
                sa.select(a.status, sa.func.count())
                .where(a.endpoint_id == ep["id"])
                .group_by(a.status)
            )
            if since:
                floor = ids.floor_id(ids.ATTEMPT, _ms(since - ID_CLOCK_MARGIN))
                stmt = stmt.where(a.id >= floor, a.created_at >= since)
            if until:
                ceiling = ids.floor_id(ids.ATTEMPT, _ms(until + ID_CLOCK_MARGIN))
                stmt = stmt.where(a.id < ceiling, a.created_at < until)
            counts = {MessageStatus(s): n for s, n in await conn.execute(stmt)}
        return {
            "success": counts.get(MessageStatus.SUCCESS, 0),
            "fail": counts.get(MessageStatus.FAIL, 0),
            "canceled": counts.get(MessageStatus.CANCELED, 0),
        }


_UNFINISHED = (MessageStatus.PENDING, MessageStatus.SENDING)
# An id is made when its attempt is recorded, just after it was sent, by a clock that may
# be a little off the database's: the id bounds are this much wider than the times.
ID_CLOCK_MARGIN = timedelta(minutes=5)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _back_of_key(ep_id: str, key: str) -> dict[str, Any]:
    """A finished delivery resent to an ordered endpoint joins its key at the back: after
    every delivery of the key still unfinished (it never overtakes a later message). One
    still unfinished keeps its place."""
    d = t.deliveries.c
    last = sa.select(sa.func.coalesce(sa.func.max(d.seq), 0) + 1).where(
        d.endpoint_id == ep_id,
        d.ordering_key == key,
        d.status.in_(_UNFINISHED),
    )
    return {"ordering_key": key, "seq": last.scalar_subquery()}
