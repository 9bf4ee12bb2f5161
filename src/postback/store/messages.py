"""Messages: ingest (one transaction with its deliveries), lookups, filters, retention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback import ids
from postback.domain import MessageStatus
from postback.store import heads
from postback.store import schema as t
from postback.store.core import OPERATIONAL_APP_ID, StoreCore
from postback.store.errors import NotFound
from postback.store.group_commit import SEEN
from postback.store.pages import Page, PageOut, page_out, paged
from postback.store.routing import ROUTING_COLUMNS, route

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
RETENTION = 90 * 86400  # Svix's default payloadRetentionPeriod: 90 days
EXPUNGED = "EXPUNGED"  # an attempt's response body once deleted, as Svix writes it

# The general path's statements, built once: SQLAlchemy then finds their compiled form by a
# memoized cache key instead of walking a freshly built statement on every message.
_INSERT_DELIVERY = t.deliveries.insert()
_e = t.endpoints.c
_LIVE_ENDPOINTS = sa.select(*ROUTING_COLUMNS).where(
    _e.app_id == sa.bindparam("app_id"), _e.disabled.is_(False)
)
_ONE_ENDPOINT = sa.select(*ROUTING_COLUMNS).where(_e.id == sa.bindparam("ep_id"))


class MessagesMixin(StoreCore):
    async def create_message(
        self,
        app_id: str,
        values: Row,
        *,
        only_endpoint: str | None = None,
        app_ref: bool = False,
    ) -> tuple[Row, bool]:
        """Insert a message and its deliveries in one transaction. Returns the message and
        whether it is new (False: the ``event_id`` was already used in this app).
        ``only_endpoint`` sends it to that endpoint alone (a test event), whatever its
        filters say. With ``app_ref``, ``app_id`` may be an id or a uid and is looked up in
        the same transaction (NotFound if there is no such application)."""
        now = self.clock()
        deliver_at = values.get("deliver_at")
        row = {
            "id": ids.new_id(ids.MESSAGE),
            "app_id": app_id,
            "event_type": values["event_type"],
            "event_id": values.get("event_id"),
            "payload": values["payload"],
            "channels": values.get("channels") or None,
            "tags": values.get("tags") or None,
            "created_at": now,
            "deliver_at": deliver_at,
            "expunge_at": now + timedelta(seconds=values.get("retention_seconds") or RETENTION),
            "trace_context": values.get("trace_context"),
            "product": values.get("product"),
            "ordering_key": values.get("ordering_key"),
        }
        if only_endpoint is None:
            # Messages accepted at the same time share one transaction: group_commit.py.
            outcome = await self._ingest.submit((row, app_ref))
            if outcome is SEEN:
                async with self.engine.connect() as conn:
                    existing = await self._message_by_event_id(conn, row["app_id"], row["event_id"])
                if existing is None:  # pragma: no cover - deleted since
                    raise NotFound(f"message with eventId {row['event_id']!r} not found")
                return existing, False
            return row, True
        async with self.engine.begin() as conn:
            if app_ref:
                row["app_id"] = app_id = (await self._get_app(conn, app_id))["id"]
            if row["event_id"] is not None:
                existing = await self._message_by_event_id(conn, app_id, row["event_id"])
                if existing is not None:
                    return existing, False
            queued = await self._insert_message(conn, row, only_endpoint)
            if queued is None:  # the eventId was taken meanwhile, by a message committed since
                existing = await self._message_by_event_id(conn, app_id, row["event_id"])
                if existing is None:  # pragma: no cover - removed since
                    raise NotFound(f"message with eventId {row['event_id']!r} not found")
                return existing, False
        if queued:
            self._notify_work()
        return row, True

    async def _insert_message(
        self, conn: AsyncConnection, row: Row, only_endpoint: str | None = None
    ) -> int | None:
        """Insert a message and one delivery per endpoint that wants it; returns how many
        are queued (None: its eventId is another message's, and nothing was written)."""
        if row["app_id"] != OPERATIONAL_APP_ID:  # it has no feed (see store/events.py)
            await self.backend.register_feed_writer(conn)
        if row.get("event_id") is not None and not await self.backend.claim_event_id(conn, row):
            return None
        await conn.execute(self.backend.message_insert, row)
        if only_endpoint is not None:
            # A test event goes to this endpoint whatever its filters say.
            eps = await conn.execute(_ONE_ENDPOINT, {"ep_id": only_endpoint})
        else:
            eps = await conn.execute(_LIVE_ENDPOINTS, {"app_id": row["app_id"]})
        deliveries = route(row, eps, everyone=only_endpoint is not None)
        if any(d["ordering_key"] is not None for d in deliveries):
            seq = await conn.scalar(sa.select(t.messages.c.seq).where(t.messages.c.id == row["id"]))
            for d in deliveries:
                d["seq"] = seq if d["ordering_key"] is not None else None
        await heads.seat_new(conn, deliveries)
        if deliveries:
            await conn.execute(_INSERT_DELIVERY, deliveries)
        queued = sum(d["status"] == MessageStatus.PENDING for d in deliveries)
        if queued:
            await self._announce_work(conn)
        return queued

    async def expunge_content(self, app_id: str, msg_id: str) -> None:
        """Erase a message's content now: its payload, the projected bodies kept for its
        endpoints, and what the endpoints answered to its attempts (``EXPUNGED``). The
        message, its deliveries and attempts stay as a tombstone (id, event type, times,
        statuses), so its history stays readable. Idempotency answers never hold a message
        (only a reference, api/idempotency.py). Erasing twice changes nothing more."""
        async with self.engine.begin() as conn:
            msg = await self._get_message(conn, app_id, msg_id)
            await conn.execute(
                t.messages.update().where(t.messages.c.id == msg["id"]).values(payload=None)
            )
            await _expunge_projections(conn, [msg["id"]])
            a = t.attempts.c
            await conn.execute(
                t.attempts.update()
                .where(a.msg_id == msg["id"], a.response != EXPUNGED)
                .values(response=EXPUNGED)
            )

    async def expunge_attempt_content(self, app_id: str, msg_id: str, attempt_id: str) -> None:
        """Replace what an endpoint answered to one attempt (Svix writes ``EXPUNGED``)."""
        a = t.attempts.c
        async with self.engine.begin() as conn:
            msg = await self._get_message(conn, app_id, msg_id)
            done = await conn.execute(
                t.attempts.update()
                .where(a.app_id == app_id, a.msg_id == msg["id"], a.id == attempt_id)
                .values(response=EXPUNGED)
            )
            if done.rowcount == 0:
                raise NotFound(f"attempt {attempt_id!r} not found")

    async def expunge_expired_payloads(self, limit: int = 1000) -> int:
        """Drop the payloads whose retention has run out (a batch at a time)."""
        c = t.messages.c
        async with self.engine.begin() as conn:
            expired = sa.select(c.id).where(c.expunge_at <= self.clock()).limit(limit)
            gone = list(await conn.scalars(expired))
            if gone:
                await conn.execute(
                    t.messages.update().where(c.id.in_(gone)).values(payload=None, expunge_at=None)
                )
                await _expunge_projections(conn, gone)
        return len(gone)

    async def get_message(self, app_id: str, msg_id: str) -> Row:
        async with self.engine.connect() as conn:
            return await self._get_message(conn, app_id, msg_id)

    async def list_messages(
        self,
        app_id: str,
        page: Page,
        *,
        event_types: Sequence[str] | None = None,
        channel: str | None = None,
        tag: str | None = None,
        before: datetime | None = None,
        after: datetime | None = None,
    ) -> PageOut:
        c = t.messages.c
        stmt = sa.select(t.messages).where(c.app_id == app_id)
        stmt = self._filter_messages(stmt, event_types, channel, tag, before, after)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(paged(stmt, c.id, page))).all()
        return page_out(rows, "id", page)

    def _filter_messages(
        self,
        stmt: sa.Select[Any],
        event_types: Sequence[str] | None,
        channel: str | None,
        tag: str | None,
        before: datetime | None,
        after: datetime | None,
    ) -> sa.Select[Any]:
        c = t.messages.c
        if event_types:
            stmt = stmt.where(c.event_type.in_(list(event_types)))
        if channel:
            stmt = stmt.where(self.backend.json_list_has(c.channels, channel))
        if tag:
            stmt = stmt.where(self.backend.json_list_has(c.tags, tag))
        # Ids sort by creation time, so time bounds become id bounds on the (app_id, id) index.
        if before:
            stmt = stmt.where(c.id < ids.floor_id(ids.MESSAGE, _ms(before)))
        if after:
            stmt = stmt.where(c.id >= ids.floor_id(ids.MESSAGE, _ms(after) + 1))
        return stmt


async def _expunge_projections(conn: AsyncConnection, msg_ids: list[str]) -> None:
    """The projected bodies kept per delivery go with their message's payload."""
    d = t.deliveries.c
    await conn.execute(
        t.deliveries.update()
        .where(d.msg_id.in_(msg_ids), d.payload.is_not(None))
        .values(payload=None)
    )


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
