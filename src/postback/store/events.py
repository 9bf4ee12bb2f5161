"""The events feed: an application's messages in a stable order, read by a cursor.

Ids sort by creation time, but writers commit in any order: a poller that remembered the
last id it saw would skip a message created before it and committed after. So messages
carry (tx, seq): on PostgreSQL tx is the writing transaction's id and the feed only reads
rows whose transaction is below the snapshot's xmin (every transaction under it has ended,
so no new row can appear there); rows are ordered by (tx, seq). SQLite has one writer at a
time, so seq alone is commit order and tx stays 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback.store import schema as t

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

Row = dict[str, Any]
_CURSOR = re.compile(r"^(\d{1,19})-(\d{1,19})$")
_m = t.messages.c
# Every transaction below this has ended; evaluated in the statement's own snapshot.
_HORIZON = sa.text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


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
