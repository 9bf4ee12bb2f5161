"""SqliteBackend: the Backend (store/backend.py) for SQLite, where one process holds the
database and one writer at a time writes it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback.store import schema as t
from postback.store.backend import Claimed, Success, Written
from postback.store.sqlite import ingest, queue, space

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from postback.delivery.scheduler import SchedulerPolicy

Row = dict[str, Any]


class SqliteBackend:
    name = "sqlite"
    # One writer at a time (BEGIN IMMEDIATE), so MAX + 1 is the commit order too; tx stays 0.
    message_insert = t.messages.insert().values(
        seq=sa.select(sa.func.coalesce(sa.func.max(t.messages.c.seq), 0) + 1).scalar_subquery()
    )

    # The write lock is the whole database's: ingest and claims wait while a batch holds it.
    batch_budget = 0.025

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def write_messages(self, items: list[tuple[Row, bool]]) -> Written:
        return await ingest.write_messages(self.engine, items)

    async def claim(
        self,
        now: datetime,
        limit: int,
        until: datetime,
        lease: str,
        worker: str,
        policy: SchedulerPolicy,
    ) -> tuple[list[Claimed], datetime | None, frozenset[str]]:
        return await queue.claim(self.engine, now, limit, until, lease, worker, policy)

    async def record_successes(self, done: Sequence[Success], now: datetime) -> list[str]:
        return await queue.record_successes(self.engine, done, now)

    async def announce_work(self, conn: AsyncConnection) -> None:
        return None  # one process: its worker is woken by the Store's event

    async def listen_for_work(self, woken: asyncio.Event) -> None:
        return None  # no other processes to hear from

    def json_list_has(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
        each = sa.func.json_each(column).table_valued("value")
        return sa.exists(sa.select(1).select_from(each).where(each.c.value == value))

    def epoch_seconds(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        # Naive UTC text; julianday counts days (with fractions) from noon 4713 BC.
        return (sa.func.julianday(column) - 2440587.5) * 86400.0

    def among(self, column: sa.ColumnElement[Any], values: Sequence[str]) -> sa.ColumnElement[bool]:
        return column.in_(values)  # batches of a few hundred (a 25 ms budget)

    def server_now(self, local_now: datetime) -> sa.ColumnElement[datetime] | datetime:
        return local_now  # one process, so one clock

    def lock_rows(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        return stmt  # BEGIN IMMEDIATE: the transaction is the only writer already

    async def register_feed_writer(self, conn: AsyncConnection) -> None:
        return None  # one writer at a time: seq is commit order

    def feed_visible(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        return stmt  # nothing committed later can land below a row already visible

    async def feed_writers(self, conn: AsyncConnection, held_after: float) -> list[Row]:
        return []  # one writer at a time: nothing can hold the feed back

    async def give_back_space(self, max_pages: int) -> int:
        return await space.give_back_space(self.engine, max_pages)

    async def table_sizes(self, tables: Sequence[str]) -> dict[str, Row]:
        return await space.table_sizes(self.engine, tables)

    async def ensure_partitions(self, width: float, ahead: int) -> int:
        return 0  # one file, no partitions: retention deletes in batches

    async def hold_partition_drops(self, conn: AsyncConnection) -> None:
        return None

    async def drop_expired_partitions(self, now: datetime, default: float) -> Row:
        return {"messages": 0, "deliveries": 0, "attempts": 0, "partitions": []}

    def event_id_is(
        self, app: str | sa.ColumnElement[Any], event_id: str
    ) -> sa.ColumnElement[bool]:
        # messages' UNIQUE (app_id, event_id) holds the eventIds here, and is the index.
        m = t.messages.c
        apps = m.app_id == app if isinstance(app, str) else m.app_id.in_(app)
        return sa.and_(apps, m.event_id == event_id)

    async def claim_event_id(self, conn: AsyncConnection, row: Row) -> bool:
        return True  # the only writer, and the unique constraint is on messages itself

    async def forget_event_ids(self, conn: AsyncConnection, msg_ids: Sequence[str]) -> None:
        return None  # they go with the message rows
