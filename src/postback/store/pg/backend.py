"""PostgresBackend: the Backend (store/backend.py) for PostgreSQL, where many API and
worker processes share one database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from postback.store import schema as t
from postback.store.backend import Claimed, Success, Written
from postback.store.pg import feed, ingest, partitions, queue

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from postback.delivery.scheduler import SchedulerPolicy

Row = dict[str, Any]
WORK_CHANNEL = "postback_work"
_NOTIFY = sa.text("SELECT pg_notify(:c, '')")
_SIZES = partitions.table_sizes_sql()
_ev = t.message_event_ids
_CLAIM_EVENT_ID = (
    pg_insert(_ev)
    .values(
        app_id=sa.bindparam("app_id"), event_id=sa.bindparam("event_id"), msg_id=sa.bindparam("id")
    )
    .on_conflict_do_nothing(index_elements=[_ev.c.app_id, _ev.c.event_id])
    .returning(_ev.c.msg_id)
)
_HOLD_DROPS = sa.text(f"SELECT pg_advisory_xact_lock_shared({partitions.DROP_LOCK})")


class PostgresBackend:
    name = "postgresql"
    # The server numbers it: seq from its sequence, tx from the transaction id (defaults).
    message_insert = t.messages.insert()

    # A batch locks only the old rows it deletes; a commit's fsync alone takes milliseconds.
    batch_budget = 0.25

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._spare = queue.SpareHeads()
        self._lease = queue.LeaseFunction()
        # The partition width and lead this process last made partitions with (the
        # setting's default until it has): ingest makes missing ones with them.
        self._partitions = (86400.0, 3)

    async def write_messages(self, items: list[tuple[Row, bool]]) -> Written:
        return await ingest.write_messages(self.engine, items, self._ensure_again)

    async def _ensure_again(self) -> None:
        await self.ensure_partitions(*self._partitions)

    async def claim(
        self,
        now: datetime,
        limit: int,
        until: datetime,
        lease: str,
        worker: str,
        policy: SchedulerPolicy,
    ) -> tuple[list[Claimed], datetime | None, frozenset[str]]:
        return await queue.claim(
            self.engine, now, limit, until, lease, worker, policy, self._spare, self._lease
        )

    async def record_successes(self, done: Sequence[Success], now: datetime) -> list[str]:
        return await queue.record_successes(self.engine, done, now)

    async def announce_work(self, conn: AsyncConnection) -> None:
        # NOTIFY is delivered at commit: nobody is woken for work that was rolled back.
        await conn.execute(_NOTIFY, {"c": WORK_CHANNEL})

    async def listen_for_work(self, woken: asyncio.Event) -> None:
        """A LISTEN connection of its own, reopened with backoff when lost; the worker's
        poll covers the gap."""
        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        backoff = 0.0
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(url, timeout=10)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                await conn.add_listener(WORK_CHANNEL, lambda *_a: woken.set())
                woken.set()  # whatever was queued while nobody listened
                backoff = 0.0
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 15)
                    if not lost.is_set():
                        await conn.execute("SELECT 1", timeout=5)  # notice a silent drop
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                backoff = min(10.0, backoff * 2 or 0.2)
                await asyncio.sleep(backoff)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()

    def json_list_has(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
        return sa.type_coerce(column, JSONB).contains([value])

    def epoch_seconds(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.extract("epoch", column)

    def among(self, column: sa.ColumnElement[Any], values: Sequence[str]) -> sa.ColumnElement[bool]:
        # One text[] parameter. An IN list is rendered by SQLAlchemy a parameter at a time
        # (with its cast): a retention batch of 4,096 ids cost 87 ms of the worker's CPU
        # and held its event loop up to 120 ms (docs/performance.md, "Retention pass").
        ids = sa.bindparam("among", list(values), type_=ARRAY(sa.String()), unique=True)
        return column == sa.any_(ids)

    def server_now(self, local_now: datetime) -> sa.ColumnElement[datetime] | datetime:
        return sa.func.now()

    def lock_rows(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        # NO KEY UPDATE, not UPDATE: attempts and deliveries inserted by this transaction
        # (and others) hold KEY SHARE locks on the rows they reference; FOR UPDATE waits for
        # those, and two recorders waiting on each other's is a deadlock.
        return stmt.with_for_update(key_share=True)

    async def register_feed_writer(self, conn: AsyncConnection) -> None:
        # The transaction must not have an id yet (store/events.py).
        if (await conn.execute(feed.REGISTER)).scalar():
            raise RuntimeError(
                "a transaction that already has an id wrote a message: the events feed could"
                " skip it; register the writer before anything else in the transaction"
            )

    def feed_visible(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        return stmt.where(t.messages.c.tx < feed.HORIZON)

    async def feed_writers(self, conn: AsyncConnection, held_after: float) -> list[Row]:
        writers = [dict(r._mapping) for r in await conn.execute(feed.WRITERS)]
        held = [w for w in writers if w["seconds"] > held_after]
        blockers = sorted({pid for w in held for pid in w["blocked_by"]})
        sessions = {}
        if blockers:
            found = await conn.execute(feed.SESSIONS, {"pids": blockers})
            sessions = {r.pid: dict(r._mapping) for r in found}
        for w in held:
            w["blocked_by"] = [sessions.get(pid, {"pid": pid}) for pid in w["blocked_by"]]
        return held

    async def give_back_space(self, max_pages: int) -> int:
        return 0  # autovacuum marks the deleted rows' space for reuse; the file stays

    async def table_sizes(self, tables: Sequence[str]) -> dict[str, Row]:
        # reltuples: the estimate autovacuum and ANALYZE keep; count(*) would read it all.
        async with self.engine.connect() as conn:
            found = await conn.execute(_SIZES, {"names": list(tables)})
        return {r.relname: {"rows": max(int(r.reltuples), 0), "bytes": int(r.bytes)} for r in found}

    async def ensure_partitions(self, width: float, ahead: int) -> int:
        self._partitions = (width, ahead)
        async with self.engine.begin() as conn:
            return await conn.run_sync(partitions.ensure, width, ahead)

    async def hold_partition_drops(self, conn: AsyncConnection) -> None:
        await conn.execute(_HOLD_DROPS)

    async def drop_expired_partitions(self, now: datetime, default: float) -> Row:
        async with self.engine.connect() as conn:
            # Each drop its own short transaction, under a session advisory lock.
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await auto.run_sync(partitions.drop_expired, now.timestamp(), default)

    def event_id_is(
        self, app: str | sa.ColumnElement[Any], event_id: str
    ) -> sa.ColumnElement[bool]:
        m, ev = t.messages.c, _ev.c
        if isinstance(app, str):
            mine, theirs = m.app_id == app, ev.app_id == app
        else:
            mine, theirs = m.app_id.in_(app), ev.app_id.in_(app)
        taken = sa.select(ev.msg_id).where(theirs, ev.event_id == event_id)
        return sa.and_(mine, m.id.in_(taken))

    async def claim_event_id(self, conn: AsyncConnection, row: Row) -> bool:
        if row.get("event_id") is None:
            return True
        params = {"app_id": row["app_id"], "event_id": row["event_id"], "id": row["id"]}
        return (await conn.execute(_CLAIM_EVENT_ID, params)).first() is not None

    async def forget_event_ids(self, conn: AsyncConnection, msg_ids: Sequence[str]) -> None:
        await conn.execute(_ev.delete().where(self.among(_ev.c.msg_id, msg_ids)))
