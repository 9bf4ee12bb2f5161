"""Accepting messages on SQLite with group commit (see group_commit.py).

SQLite has one writer, and the store one connection: on the general path every message
held it for seven statements, each a handoff to the connection's thread, and paid its own
fsync at COMMIT (``synchronous=FULL``). Here a batch of messages is one transaction, in one
call into the connection's thread: one fsync for all of them.

Each message gets a savepoint: one that fails (an unknown application, a bug) is rolled
back and reported to its caller alone.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from postback import ids
from postback.domain import MessageStatus
from postback.store.backend import Written
from postback.store.core import OPERATIONAL_APP_ID
from postback.store.errors import NotFound
from postback.store.group_commit import SEEN
from postback.store.routing import RoutedEndpoint, route
from postback.store.sqlite.raw import json_text, sqlite_thread, stamp, transaction

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

Row = dict[str, Any]

_APP_BY_ID = "SELECT id FROM applications WHERE id = ?"
_APP_BY_UID = "SELECT id FROM applications WHERE uid = ?"
_EVENT_USED = "SELECT 1 FROM messages WHERE app_id = ? AND event_id = ?"
_NEXT_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM messages"  # ix_messages_seq: one index probe
_INSERT_MESSAGE = (
    "INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags,"
    " created_at, deliver_at, expunge_at, seq, trace_context, product, ordering_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_LIVE_ENDPOINTS = (  # NULLIF: an unset JSON column holds JSON null (see pg/ingest.py)
    "SELECT id, product, NULLIF(event_types, 'null'), NULLIF(channels, 'null'),"
    " NULLIF(payload_filter, 'null'), NULLIF(projection, 'null'), ordered"
    " FROM endpoints WHERE app_id = ? AND disabled = 0"
)
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count,"
    " trigger_type, next_attempt_at, wake_at, lease, rate_slot, payload, note, ordering_key,"
    " seq, head, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?, NULL, 0, ?, ?, ?, ?, ?, ?, ?)"
)
# Whether an ordered key has a delivery unfinished: a new one joins it behind the head
# (store/heads.py), else it is the head. The batch's earlier messages are seen: they are
# written in this transaction.
_KEY_BUSY = (
    "SELECT 1 FROM deliveries WHERE endpoint_id = ? AND ordering_key = ?"
    " AND ordering_key IS NOT NULL AND status IN (1, 3) LIMIT 1"
)


async def write_messages(engine: AsyncEngine, items: list[tuple[Row, bool]]) -> Written:
    """Backend.write_messages on SQLite (see the module doc)."""
    async with sqlite_thread(engine) as run:
        outcomes = await run(_write_batch, items)
    queued = any(o is True for o in outcomes)
    return Written([None if o is True or o is False else o for o in outcomes], queued)


def _write_batch(db: sqlite3.Connection, items: list[tuple[Row, bool]]) -> list[Any]:
    """In the connection's thread: every message of the batch in one transaction. Returns,
    per message, True (written, deliveries queued), False (written, nothing queued),
    ``SEEN`` or the exception that message alone raised."""
    outcomes: list[Any] = []
    with transaction(db) as cur:
        seq = cur.execute(_NEXT_SEQ).fetchone()[0]
        for row, app_ref in items:
            cur.execute("SAVEPOINT msg")
            try:
                outcome = _write_one(cur, row, app_ref, seq + 1)
            except Exception as exc:
                cur.execute("ROLLBACK TO msg")
                outcome = exc
            cur.execute("RELEASE msg")
            if outcome is not SEEN and not isinstance(outcome, Exception):
                seq += 1
            outcomes.append(outcome)
    return outcomes


def _write_one(
    cur: sqlite3.Cursor,
    row: Row,
    app_ref: bool,
    seq: int,
) -> Any:
    ref = row["app_id"]
    if app_ref:
        by_id = ids.has_prefix(ref, ids.APPLICATION)
        found = cur.execute(_APP_BY_ID if by_id else _APP_BY_UID, (ref,)).fetchone()
        if found is None or ref == OPERATIONAL_APP_ID:  # internal, not an app
            raise NotFound(f"application {ref!r} not found")
        row["app_id"] = found[0]
    app_id = row["app_id"]
    if (
        row["event_id"] is not None
        and cur.execute(_EVENT_USED, (app_id, row["event_id"])).fetchone()
    ):
        return SEEN
    created = stamp(row["created_at"])
    cur.execute(
        _INSERT_MESSAGE,
        (
            row["id"],
            app_id,
            row["event_type"],
            row["event_id"],
            row["payload"],
            json_text(row["channels"]),
            json_text(row["tags"]),
            created,
            stamp(row["deliver_at"]),
            stamp(row["expunge_at"]),
            seq,
            row.get("trace_context"),
            row.get("product"),
            row.get("ordering_key"),
        ),
    )
    live = [RoutedEndpoint(*e) for e in cur.execute(_LIVE_ENDPOINTS, (app_id,))]
    deliveries = route(row, live)
    if deliveries:
        heads = [_is_head(cur, d) for d in deliveries]  # one endpoint each: none sees another
        cur.executemany(
            _INSERT_DELIVERY,
            [
                (
                    d["id"],
                    row["id"],
                    d["endpoint_id"],
                    app_id,
                    int(d["status"]),
                    stamp(d["next_attempt_at"]),
                    stamp(d["wake_at"]),
                    d["payload"],
                    d["note"],
                    d["ordering_key"],
                    None if d["ordering_key"] is None else seq,
                    head,
                    created,
                    created,
                )
                for d, head in zip(deliveries, heads, strict=True)
            ],
        )
    return any(d["next_attempt_at"] is not None for d in deliveries)


def _is_head(cur: sqlite3.Cursor, delivery: Row) -> bool:
    key = delivery["ordering_key"]
    if key is None or delivery["status"] != MessageStatus.PENDING:
        return False
    return cur.execute(_KEY_BUSY, (delivery["endpoint_id"], key)).fetchone() is None
