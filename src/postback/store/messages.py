"""Messages: ingest (one transaction with its deliveries), lookups, filters, retention."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from postback import ids
from postback.domain import MessageStatus, TriggerType, endpoint_wants
from postback.store import schema as t
from postback.store.errors import NotFound
from postback.store.pages import Page, PageOut, page_out, paged

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Row = dict[str, Any]
RETENTION = 90 * 86400  # Svix's default payloadRetentionPeriod: 90 days

# The ingest path's statements, built once: SQLAlchemy then finds their compiled form by a
# memoized cache key instead of walking a freshly built statement on every message.
_INSERT_MESSAGE = t.messages.insert()
_INSERT_DELIVERY = t.deliveries.insert()
_LIVE_ENDPOINTS = sa.select(
    t.endpoints.c.id, t.endpoints.c.event_types, t.endpoints.c.channels
).where(t.endpoints.c.app_id == sa.bindparam("app_id"), t.endpoints.c.disabled.is_(False))


class MessagesMixin:
    engine: AsyncEngine
    dialect: str
    clock: Callable[[], datetime]

    def _notify_work(self) -> None: ...

    async def _announce_work(self, conn: AsyncConnection) -> None: ...

    async def _get_app(self, conn: AsyncConnection, id_or_uid: str) -> Row: ...

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
        }
        async with self.engine.begin() as conn:
            if app_ref:
                row["app_id"] = app_id = (await self._get_app(conn, app_id))["id"]
            if row["event_id"] is not None:
                existing = await self._message_by_event_id(conn, app_id, row["event_id"])
                if existing is not None:
                    return existing, False
            queued = await self._insert_message(conn, row, only_endpoint)
        if queued:
            self._notify_work()
        return row, True

    async def _insert_message(
        self, conn: AsyncConnection, row: Row, only_endpoint: str | None = None
    ) -> int:
        """Insert a message and one delivery per endpoint that wants it; returns how many."""
        await conn.execute(_INSERT_MESSAGE, row)
        now, deliver_at = row["created_at"], row["deliver_at"]
        due = deliver_at if deliver_at and deliver_at > now else now
        if only_endpoint is not None:
            targets = [only_endpoint]
        else:
            eps = await conn.execute(_LIVE_ENDPOINTS, {"app_id": row["app_id"]})
            targets = [
                ep.id
                for ep in eps
                if endpoint_wants(ep.event_types, ep.channels, row["event_type"], row["channels"])
            ]
        deliveries = [self._new_delivery(row["id"], ep, row["app_id"], due, now) for ep in targets]
        if deliveries:
            await conn.execute(_INSERT_DELIVERY, deliveries)
            await self._announce_work(conn)
        return len(deliveries)

    async def expunge_content(self, app_id: str, msg_id: str) -> None:
        """Drop a message's payload now; its record and attempts stay."""
        async with self.engine.begin() as conn:
            msg = await self._get_message(conn, app_id, msg_id)
            await conn.execute(
                t.messages.update().where(t.messages.c.id == msg["id"]).values(payload=None)
            )

    async def expunge_expired_payloads(self, limit: int = 1000) -> int:
        """Drop the payloads whose retention has run out (a batch at a time)."""
        c = t.messages.c
        async with self.engine.begin() as conn:
            expired = sa.select(c.id).where(c.expunge_at <= self.clock()).limit(limit)
            done = await conn.execute(
                t.messages.update()
                .where(c.id.in_(expired.scalar_subquery()))
                .values(payload=None, expunge_at=None)
            )
        return done.rowcount

    @staticmethod
    def _new_delivery(msg_id: str, ep_id: str, app_id: str, due: datetime, now: datetime) -> Row:
        return {
            "id": ids.new_id(ids.DELIVERY),
            "msg_id": msg_id,
            "endpoint_id": ep_id,
            "app_id": app_id,
            "status": MessageStatus.PENDING,
            "attempt_count": 0,
            "trigger_type": TriggerType.SCHEDULED,
            "next_attempt_at": due,
            "lease": None,
            "created_at": now,
            "updated_at": now,
        }

    async def _message_by_event_id(
        self, conn: AsyncConnection, app_id: str, event_id: str
    ) -> Row | None:
        c = t.messages.c
        stmt = sa.select(t.messages).where(c.app_id == app_id, c.event_id == event_id)
        row = (await conn.execute(stmt)).first()
        return dict(row._mapping) if row else None

    async def get_message(self, app_id: str, msg_id: str) -> Row:
        async with self.engine.connect() as conn:
            return await self._get_message(conn, app_id, msg_id)

    async def _get_message(self, conn: AsyncConnection, app_id: str, msg_id: str) -> Row:
        if not ids.has_prefix(msg_id, ids.MESSAGE):
            # Svix lets a message be addressed by its eventId too.
            found = await self._message_by_event_id(conn, app_id, msg_id)
            if found is None:
                raise NotFound(f"message {msg_id!r} not found")
            return found
        c = t.messages.c
        stmt = sa.select(t.messages).where(c.app_id == app_id, c.id == msg_id)
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"message {msg_id!r} not found")
        return dict(row._mapping)

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
            stmt = stmt.where(self._json_list_has(c.channels, channel))
        if tag:
            stmt = stmt.where(self._json_list_has(c.tags, tag))
        # Ids sort by creation time, so time bounds become id bounds on the (app_id, id) index.
        if before:
            stmt = stmt.where(c.id < ids.floor_id(ids.MESSAGE, _ms(before)))
        if after:
            stmt = stmt.where(c.id >= ids.floor_id(ids.MESSAGE, _ms(after) + 1))
        return stmt

    def _json_list_has(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
        if self.dialect == "postgresql":
            return sa.type_coerce(column, JSONB).contains([value])
        each = sa.func.json_each(column).table_valued("value")
        return sa.exists(sa.select(1).select_from(each).where(each.c.value == value))


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
