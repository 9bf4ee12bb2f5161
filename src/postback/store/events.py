"""The events feed: an application's messages in a stable order, read by a cursor.

Ids sort by creation time, but writers commit in any order: a poller that remembered the
last id it saw would skip a message created before it and committed after. So messages
carry (tx, seq): on PostgreSQL tx is the writing transaction's id, and the feed reads only
rows below a horizon under which every transaction that could still write a message has
ended; rows are ordered by (tx, seq). SQLite has one writer at a time, so seq alone is
commit order and tx stays 0.

The horizon is computed from the writers alone, not from every transaction on the server
(``pg_snapshot_xmin`` would let any open transaction, in any database, freeze the feed):

- A transaction that writes messages first takes a shared advisory lock, ``FEED_WRITER``,
  *before* it has a transaction id (ingest_pg.py does it at the top of its one statement,
  messages.py with ``_register_feed_writer``). Shared locks do not conflict: writers never
  wait for each other or for readers.
- The feed's statement reads its own snapshot S and then, later in the same statement, the
  lock table (``pg_locks``, one consistent copy). The horizon is the least of S's xmax and
  every transaction id that S saw running, except those that the lock table shows running
  without the writer lock: those got their id before S, so were they writers they would
  have taken the lock before that and would still hold it. What is left is the writers
  still running, plus any transaction that ended between S and the lock read (kept, since
  it may have been a writer whose rows S cannot see; it stops holding anything back on the
  next read).

So every transaction below the horizon that could have written a message had ended when S
was taken: its rows are in S or never will be, and no row can later appear behind a cursor
this returned. The reasoning is in docs/architecture.md ("The events feed").

Messages of the operational application are written without the lock (inside transactions
that already have an id): that application has no feed, it is not an application callers
can reach.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback.store import schema as t

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Row = dict[str, Any]
_CURSOR = re.compile(r"^(\d{1,19})-(\d{1,19})$")
_m = t.messages.c

# pg_advisory_xact_lock_shared(int, int) keys: "pb", "feed". The two-key form lives apart
# from the one-key locks (migrate.py's), and each database has its own.
FEED_WRITER = (0x7062, 0x66656564)
REGISTER_FEED_WRITER = f"pg_advisory_xact_lock_shared({FEED_WRITER[0]}, {FEED_WRITER[1]})"
# The lock rows of this database's feed writers, in pg_locks.
_WRITER_LOCK = f"""
    locktype = 'advisory' AND classid = {FEED_WRITER[0]} AND objid = {FEED_WRITER[1]}
    AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
# Every transaction that could still write a message below this has ended (see above).
# An uncorrelated scalar subquery: run once, during the statement, after its snapshot.
_HORIZON = sa.text(
    f"""(
    WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
    locks AS MATERIALIZED (
        SELECT locktype, classid, objid, objsubid, database, virtualtransaction,
               transactionid, mode, granted
        FROM pg_locks WHERE locktype IN ('advisory', 'transactionid')
    ),
    writers AS (SELECT virtualtransaction FROM locks WHERE {_WRITER_LOCK}),
    bystanders AS (
        SELECT transactionid::text::bigint AS xid FROM locks AS l
        WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted
          AND NOT EXISTS (SELECT 1 FROM writers AS w
                          WHERE w.virtualtransaction = l.virtualtransaction)
    )
    SELECT LEAST(
        pg_snapshot_xmax(s)::text::bigint,
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s) AS x
         WHERE (x::text::bigint & 4294967295) NOT IN (SELECT xid FROM bystanders))
    ) FROM snap
)"""
)
_REGISTER = sa.text(
    f"SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS late, {REGISTER_FEED_WRITER}"
)
# The writers now open, oldest first, and the sessions they wait for.
_WRITERS = sa.text(
    f"""
    SELECT a.pid, a.datname AS database, a.state, a.wait_event_type, a.wait_event,
           EXTRACT(EPOCH FROM clock_timestamp() - a.xact_start)::float AS seconds,
           pg_blocking_pids(a.pid) AS blocked_by
    FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE {_WRITER_LOCK} AND a.xact_start IS NOT NULL
    ORDER BY a.xact_start LIMIT 10
    """
)
_SESSIONS = sa.text(
    """
    SELECT pid, datname AS database, state, backend_type,
           EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::float AS seconds
    FROM pg_stat_activity WHERE pid = ANY(:pids)
    """
)


class BadCursor(ValueError):
    pass


def cursor_of(row: Any) -> str:
    return f"{row.tx}-{row.seq}"


def parse_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return (-1, 0)
    match = _CURSOR.match(cursor)
    if match is None:
        raise BadCursor("not a cursor this feed returned")
    return int(match[1]), int(match[2])


class EventsMixin:
    engine: AsyncEngine
    dialect: str

    def _json_list_has(self, column: Any, value: str) -> sa.ColumnElement[bool]: ...

    async def poll_events(
        self,
        app_id: str,
        after: str | None,
        limit: int,
        *,
        event_types: Sequence[str] | None = None,
        channel: str | None = None,
    ) -> tuple[list[Row], str | None]:
        """Up to ``limit`` messages past the cursor ``after`` (None: from the start), and the
        cursor to ask with next (the same one when nothing new has committed)."""
        tx, seq = parse_cursor(after)
        position = sa.tuple_(_m.tx, _m.seq)
        stmt = (
            sa.select(t.messages)
            .where(_m.app_id == app_id, position > sa.tuple_(sa.literal(tx), sa.literal(seq)))
            .order_by(_m.tx, _m.seq)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            stmt = stmt.where(_m.tx < _HORIZON)
        if event_types:
            stmt = stmt.where(_m.event_type.in_(list(event_types)))
        if channel:
            stmt = stmt.where(self._json_list_has(_m.channels, channel))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        cursor = cursor_of(rows[-1]) if rows else after
        return [dict(r._mapping) | {"cursor": cursor_of(r)} for r in rows], cursor

    async def _register_feed_writer(self, conn: AsyncConnection) -> None:
        """On PostgreSQL, before a transaction writes messages: count it among the writers
        the feed waits for. It must not have a transaction id yet (see the module doc)."""
        if self.dialect != "postgresql":
            return  # SQLite: one writer at a time, seq is commit order
        if (await conn.execute(_REGISTER)).scalar():
            raise RuntimeError(
                "a transaction that already has an id wrote a message: the events feed could"
                " skip it; register the writer before anything else in the transaction"
            )

    async def feed_health(self, held_after: float = 5.0) -> dict[str, Any]:
        """Whether the events feed is held back, and by what. Only transactions writing
        messages can hold it back (each is normally one short statement); one open longer
        than ``held_after`` seconds is reported with its pid, database, state, age and the
        sessions it waits for (``pg_blocking_pids``)."""
        health: dict[str, Any] = {"held_back": False, "held_seconds": 0.0, "writers": []}
        if self.dialect != "postgresql":
            return health  # one writer at a time: nothing can hold the feed back
        async with self.engine.connect() as conn:
            writers = [dict(r._mapping) for r in await conn.execute(_WRITERS)]
            held = [w for w in writers if w["seconds"] > held_after]
            blockers = sorted({pid for w in held for pid in w["blocked_by"]})
            sessions = {}
            if blockers:
                found = await conn.execute(_SESSIONS, {"pids": blockers})
                sessions = {r.pid: dict(r._mapping) for r in found}
        for w in held:
            w["blocked_by"] = [sessions.get(pid, {"pid": pid}) for pid in w["blocked_by"]]
        health["writers"] = held
        health["held_back"] = bool(held)
        health["held_seconds"] = held[0]["seconds"] if held else 0.0
        return health
