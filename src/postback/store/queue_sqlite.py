"""The worker's two hot transactions on SQLite, each run whole in the connection's thread
(see sqliteraw.py): claiming due deliveries with what sending them needs, and recording a
batch of plain successes. They do what queue.py's general statements do, row for row; the
tests hold them to it."""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from datetime import datetime
from typing import Any

from postback.domain import MessageStatus
from postback.store.sqliteraw import json_value, stamp, transaction

_CLAIM = """
UPDATE deliveries SET status = ?, next_attempt_at = ?, lease = ?, updated_at = ?
WHERE id IN (SELECT id FROM deliveries WHERE next_attempt_at <= ?
             ORDER BY next_attempt_at LIMIT ?)
RETURNING id
"""
_DETAILS = """
SELECT d.id, d.msg_id, d.app_id, d.endpoint_id, d.attempt_count, d.trigger_type, e.url,
       e.secret, NULLIF(e.previous_secrets, 'null'), NULLIF(e.headers, '{{}}'),
       e.throttle_rate, d.rate_slot,
       COALESCE(d.payload, m.payload)
FROM deliveries d
JOIN endpoints e ON e.id = d.endpoint_id
JOIN messages m ON m.id = d.msg_id
WHERE d.id IN ({marks})
ORDER BY d.id
"""
Claimed = namedtuple(
    "Claimed",
    "id msg_id app_id endpoint_id attempt_count trigger_type url secret previous_secrets "
    "headers throttle_rate rate_slot payload",
)

_PRESENT = "SELECT id FROM deliveries WHERE id IN ({marks})"
_INSERT_ATTEMPT = """
INSERT INTO attempts (id, msg_id, endpoint_id, app_id, url, status, response_status_code,
                      response, error, response_duration_ms, trigger_type, created_at)
VALUES (?, ?, ?, ?, ?, 0, ?, ?, NULL, ?, ?, ?)
"""
_MOVE_ON = """
UPDATE deliveries
SET status = 0, next_attempt_at = NULL, attempt_count = ?, lease = NULL, trigger_type = 0,
    rate_slot = 0, updated_at = ?
WHERE id = ? AND lease = ?
"""
_NOT_FAILING = (
    "UPDATE endpoints SET failing_since = NULL WHERE id IN ({marks}) AND failing_since IS NOT NULL"
)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def claim(
    db: sqlite3.Connection, now: datetime, limit: int, until: datetime, lease: str
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries and read what sending them needs, in message
    order (rate-limit slots go out in it)."""
    now_s = stamp(now)
    with transaction(db) as cur:
        args = (int(MessageStatus.SENDING), stamp(until), lease, now_s, now_s, limit)
        taken = [r[0] for r in cur.execute(_CLAIM, args).fetchall()]
        if not taken:
            return []
        rows = cur.execute(_DETAILS.format(marks=_marks(len(taken))), taken).fetchall()
    return [
        Claimed(*r[:8], json_value(r[8]), json_value(r[9]) or {}, r[10], bool(r[11]), r[12])
        for r in rows
    ]


def record_successes(db: sqlite3.Connection, done: list[tuple[Any, ...]], now: datetime) -> None:
    """A batch of plain successes in one transaction: the attempts of deliveries that still
    exist (an endpoint or message deleted in flight takes its delivery with it), each
    delivery done under the lease that claimed it, and endpoints failing no more.

    ``done``: per attempt (id, delivery_id, lease, msg_id, endpoint_id, app_id, url, code,
    response, duration_ms, trigger, at, attempt_count), as for PostgreSQL."""
    now_s = stamp(now)
    with transaction(db) as cur:
        wanted = [d[1] for d in done]
        present = {r[0] for r in cur.execute(_PRESENT.format(marks=_marks(len(wanted))), wanted)}
        kept = [(d[0], *d[3:11], stamp(d[11])) for d in done if d[1] in present]
        if kept:
            cur.executemany(_INSERT_ATTEMPT, kept)
        cur.executemany(_MOVE_ON, [(d[12], now_s, d[1], d[2]) for d in done])
        endpoints = sorted({d[4] for d in done if d[1] in present})
        if endpoints:
            cur.execute(_NOT_FAILING.format(marks=_marks(len(endpoints))), endpoints)
