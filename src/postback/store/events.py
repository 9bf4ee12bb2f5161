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
  *before* it has a transaction id (pg/ingest.py does it at the top of its one statement,
  the general path with ``Backend.register_feed_writer``; the SQL is in pg/feed.py).
  Shared locks do not conflict: writers never wait for each other or for readers.
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
from postback.store.core import StoreCore

if TYPE_CHECKING:
    pass

Row = dict[str, Any]
_CURSOR = re.compile(r"^(\d{1,19})-(\d{1,19})$")
_m = t.messages.c


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


class EventsMixin(StoreCore):
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
        stmt = self.backend.feed_visible(stmt)
        if event_types:
            stmt = stmt.where(_m.event_type.in_(list(event_types)))
        if channel:
            stmt = stmt.where(self.backend.json_list_has(_m.channels, channel))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        cursor = cursor_of(rows[-1]) if rows else after
        return [dict(r._mapping) | {"cursor": cursor_of(r)} for r in rows], cursor

    async def feed_health(self, held_after: float = 5.0) -> dict[str, Any]:
        """Whether the events feed is held back, and by what. Only transactions writing
        messages can hold it back (each is normally one short statement); one open longer
        than ``held_after`` seconds is reported with its pid, database, state, age and the
        sessions it waits for."""
        async with self.engine.connect() as conn:
            held = await self.backend.feed_writers(conn, held_after)
        return {
            "held_back": bool(held),
            "held_seconds": held[0]["seconds"] if held else 0.0,
            "writers": held,
        }
