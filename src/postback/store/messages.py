"""Messages: ingest (one transaction with its deliveries), lookups, filters, retention."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from postback import ids
from postback.domain import MessageStatus, TriggerType, decode_json, endpoint_wants
from postback.filters import compile_filter, project
from postback.store import schema as t
from postback.store.errors import NotFound
from postback.store.group_commit import SEEN, GroupCommit
from postback.store.operational import OPERATIONAL_APP_ID
from postback.store.pages import Page, PageOut, page_out, paged

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Row = dict[str, Any]
RETENTION = 90 * 86400  # Svix's default payloadRetentionPeriod: 90 days

# The ingest path's statements, built once: SQLAlchemy then finds their compiled form by a
# memoized cache key instead of walking a freshly built statement on every message.
_INSERT_MESSAGE = t.messages.insert()  # PostgreSQL numbers it (seq, tx defaults)
# SQLite: one writer at a time (BEGIN IMMEDIATE), so MAX + 1 is the commit order too.
_INSERT_MESSAGE_SQLITE = t.messages.insert().values(
    seq=sa.select(sa.func.coalesce(sa.func.max(t.messages.c.seq), 0) + 1).scalar_subquery()
)
_INSERT_DELIVERY = t.deliveries.insert()
_e = t.endpoints.c
_ROUTING = (_e.id, _e.event_types, _e.channels, _e.payload_filter, _e.projection)
_LIVE_ENDPOINTS = sa.select(*_ROUTING).where(
    _e.app_id == sa.bindparam("app_id"), _e.disabled.is_(False)
)
_ONE_ENDPOINT = sa.select(*_ROUTING).where(_e.id == sa.bindparam("ep_id"))
_UNPARSED = object()


class RoutedEndpoint:
    """An endpoint as ``_route`` reads it, from a driver's row on the batch paths: its id
    and routing columns, JSON given as text (decoded here) or already decoded."""

    __slots__ = ("channels", "event_types", "id", "payload_filter", "projection")

    def __init__(self, ep_id: str, *routing: Any) -> None:
        self.id = ep_id
        self.event_types, self.channels, self.payload_filter, self.projection = (
            json.loads(v) if isinstance(v, str) else v for v in routing
        )


class MessagesMixin:
    engine: AsyncEngine
    dialect: str
    clock: Callable[[], datetime]
    _ingest: GroupCommit[tuple[Row, bool]]

    # store/events.py's; annotated, not stubbed, so no base order can shadow it
    _register_feed_writer: Callable[[AsyncConnection], Awaitable[None]]

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
            "trace_context": values.get("trace_context"),
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
        if queued:
            self._notify_work()
        return row, True

    async def _insert_message(
        self, conn: AsyncConnection, row: Row, only_endpoint: str | None = None
    ) -> int:
        """Insert a message and one delivery per endpoint that wants it; returns how many
        are queued."""
        insert = _INSERT_MESSAGE_SQLITE if self.dialect == "sqlite" else _INSERT_MESSAGE
        if row["app_id"] != OPERATIONAL_APP_ID:  # it has no feed (see store/events.py)
            await self._register_feed_writer(conn)
        await conn.execute(insert, row)
        if only_endpoint is not None:
            # A test event goes to this endpoint whatever its filters say.
            eps = await conn.execute(_ONE_ENDPOINT, {"ep_id": only_endpoint})
        else:
            eps = await conn.execute(_LIVE_ENDPOINTS, {"app_id": row["app_id"]})
        deliveries = self._route(row, eps, everyone=only_endpoint is not None)
        if deliveries:
            await conn.execute(_INSERT_DELIVERY, deliveries)
        queued = sum(d["status"] == MessageStatus.PENDING for d in deliveries)
        if queued:
            await self._announce_work(conn)
        return queued

    def _route(self, row: Row, endpoints: Any, *, everyone: bool = False) -> list[Row]:
        """One delivery per endpoint that wants the message (``everyone``: each endpoint
        given, whatever its subscriptions and filter). An endpoint whose payload filter
        says no gets a canceled delivery that says why (the message's destinations show
        it); one with a projection gets its own body."""
        now, deliver_at = row["created_at"], row["deliver_at"]
        due = deliver_at if deliver_at and deliver_at > now else now
        deliveries, doc = [], _UNPARSED
        for ep in endpoints:
            if not everyone and not endpoint_wants(
                ep.event_types, ep.channels, row["event_type"], row["channels"]
            ):
                continue
            delivery = self._new_delivery(row["id"], ep.id, row["app_id"], due, now)
            if ep.payload_filter or ep.projection:
                if doc is _UNPARSED:
                    doc = decode_json(row["payload"]) if row["payload"] else {}
                why = None
                if ep.payload_filter and not everyone:
                    why = compile_filter(ep.payload_filter)(doc)
                if why is not None:
                    delivery.update(status=MessageStatus.CANCELED, next_attempt_at=None, note=why)
                elif ep.projection:
                    delivery["payload"] = project(doc, ep.projection)
            deliveries.append(delivery)
        return deliveries

    async def expunge_content(self, app_id: str, msg_id: str) -> None:
        """Drop a message's payload now; its record and attempts stay."""
        async with self.engine.begin() as conn:
            msg = await self._get_message(conn, app_id, msg_id)
            await conn.execute(
                t.messages.update().where(t.messages.c.id == msg["id"]).values(payload=None)
            )
            await _expunge_projections(conn, [msg["id"]])

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
            "payload": None,
            "note": None,
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
