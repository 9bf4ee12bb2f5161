"""The worker's two hot transactions on SQLite, each run whole in the connection's thread
(see raw.py): claiming due deliveries with what sending them needs, and recording a
batch of plain successes. They do what queue.py's general statements do, row for row; the
tests hold them to it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from postback.delivery.scheduler import QueueHead, SchedulerPolicy, plan_claim
from postback.store.backend import Claimed, Success
from postback.store.sqlite.raw import json_value, sqlite_thread, stamp, transaction

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

# The same reads as pg/queue.py's (see there): every endpoint with queued deliveries, found
# one index probe at a time, with its earliest pending delivery (and its id), its earliest
# claim end, and its live claims only when something is due. Each step of the walk reads
# the endpoint's first row in the index's order (by rowid), which is its earliest pending
# delivery if it has one and else its earliest claim: only an endpoint with pending work
# needs another probe, for its claims. With the id and the claim end, an endpoint the plan
# gives one delivery needs no query of its own (_claim). Over 1,000 endpoints with one due
# delivery each, these took a claim from 22.4 to 14.3 ms and the walk from 3.2-3.4 ms to
# 2.1-2.8 ms (docs/performance.md).
_HEADS = """
WITH RECURSIVE firsts(id, status, at, did) AS (
    SELECT d.endpoint_id, d.status, d.next_attempt_at, d.id FROM deliveries d WHERE d.rowid = (
        SELECT rowid FROM deliveries WHERE next_attempt_at IS NOT NULL
        ORDER BY endpoint_id, status, next_attempt_at LIMIT 1)
    UNION ALL
    SELECT d.endpoint_id, d.status, d.next_attempt_at, d.id
    FROM firsts f JOIN deliveries d ON d.rowid = (
        SELECT x.rowid FROM deliveries x
        WHERE x.next_attempt_at IS NOT NULL AND x.endpoint_id > f.id
        ORDER BY x.endpoint_id, x.status, x.next_attempt_at LIMIT 1)
), heads AS MATERIALIZED (
    SELECT f.id, CASE WHEN f.status = 1 THEN f.at END AS pending_at,
           CASE WHEN f.status = 1 THEN f.did END AS pending_id,
           CASE WHEN f.status = 1 THEN
               (SELECT d.next_attempt_at FROM deliveries d
                WHERE d.endpoint_id = f.id AND d.status = 3 AND d.next_attempt_at IS NOT NULL
                ORDER BY d.endpoint_id, d.status, d.next_attempt_at LIMIT 1)
           ELSE f.at END AS claim_end
    FROM firsts f
)
SELECT e.id, e.app_id, h.pending_at, h.claim_end,
       e.max_in_flight, e.circuit_state, e.circuit_probe_at, e.paused_until,
       CASE WHEN h.pending_at <= ?1 OR h.claim_end <= ?1 THEN
           (SELECT count(*) FROM deliveries d
            WHERE d.endpoint_id = e.id AND d.status = 3 AND d.next_attempt_at > ?1)
       ELSE 0 END,
       e.ordered, h.pending_id
FROM heads h JOIN endpoints e ON e.id = h.id
"""
# One endpoint's earliest due deliveries: pending ones and lapsed claims.
_DUE = """
SELECT id FROM (
    SELECT * FROM (SELECT id, next_attempt_at FROM deliveries
                   WHERE endpoint_id = ?1 AND status = 1 AND next_attempt_at <= ?2
                   ORDER BY endpoint_id, status, next_attempt_at LIMIT ?3)
    UNION ALL
    SELECT * FROM (SELECT id, next_attempt_at FROM deliveries
                   WHERE endpoint_id = ?1 AND status = 3 AND next_attempt_at <= ?2
                   ORDER BY endpoint_id, status, next_attempt_at LIMIT ?3)
) ORDER BY next_attempt_at LIMIT ?3
"""
# An ordered endpoint's due key heads (see pg/queue.py's _DUE_HEADS): a range of
# ix_deliveries_heads, so keys whose head waits are not read.
_DUE_HEADS = """
SELECT id FROM deliveries
WHERE endpoint_id = ?1 AND head AND status IN (1, 3) AND next_attempt_at IS NOT NULL
  AND next_attempt_at <= ?2
ORDER BY endpoint_id, next_attempt_at LIMIT ?3
"""
_LEASE = (
    "UPDATE deliveries SET status = 3, next_attempt_at = ?, lease = ?, worker = ?, "
    "updated_at = ? WHERE id IN ({marks})"
)
_MARK_PROBES = (
    "UPDATE endpoints SET circuit_state = 2, circuit_probe_at = ? "
    "WHERE id IN ({marks}) AND circuit_state <> 0"
)
_DETAILS = """
SELECT d.id, d.msg_id, d.app_id, d.endpoint_id, d.attempt_count, d.trigger_type, e.url,
       e.secret, NULLIF(e.previous_secrets, 'null'), NULLIF(e.headers, '{{}}'),
       e.throttle_rate, d.rate_slot,
       COALESCE(d.payload, m.payload), a.throttle_rate, e.tls, e.oauth, m.trace_context
FROM deliveries d
JOIN endpoints e ON e.id = d.endpoint_id
JOIN messages m ON m.id = d.msg_id
JOIN applications a ON a.id = d.app_id
WHERE d.id IN ({marks})
ORDER BY d.id
"""

_PRESENT = "SELECT id, endpoint_id, ordering_key FROM deliveries WHERE id IN ({marks})"
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
# A finished head's key: its next delivery is the head (store/heads.py).
_PROMOTE = """
UPDATE deliveries SET head = 1 WHERE id = (
    SELECT id FROM deliveries
    WHERE endpoint_id = ?1 AND ordering_key = ?2 AND ordering_key IS NOT NULL
      AND status IN (1, 3)
    ORDER BY endpoint_id, ordering_key, seq, id LIMIT 1) AND NOT head
"""
_NOT_FAILING = (
    "UPDATE endpoints SET failing_since = NULL, circuit_failures = 0 WHERE id IN ({marks}) "
    "AND (failing_since IS NOT NULL OR circuit_failures > 0)"
)
_NOT_CLOSED = "SELECT id FROM endpoints WHERE id IN ({marks}) AND circuit_state <> 0"


def _marks(count: int) -> str:
    return ", ".join("?" * count)


_UNSEEN = object()


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


async def claim(
    engine: AsyncEngine,
    now: datetime,
    limit: int,
    until: datetime,
    lease: str,
    worker: str,
    policy: SchedulerPolicy,
) -> tuple[list[Claimed], datetime | None, frozenset[str]]:
    """Backend.claim on SQLite: planned and leased in one transaction in the connection's
    thread (one writer at a time: the plan cannot go stale under it)."""
    async with sqlite_thread(engine) as run:
        return await run(_claim, now, limit, until, lease, worker, policy)


async def record_successes(
    engine: AsyncEngine, done: Sequence[Success], now: datetime
) -> list[str]:
    """Backend.record_successes on SQLite: one transaction in the connection's thread."""
    async with sqlite_thread(engine) as run:
        return await run(_record_successes, done, now)


def _claim(
    db: sqlite3.Connection,
    now: datetime,
    limit: int,
    until: datetime,
    lease: str,
    worker: str,
    policy: SchedulerPolicy,
) -> tuple[list[Claimed], datetime | None, frozenset[str]]:
    """Plan (postback.delivery.scheduler.plan_claim) and lease up to ``limit`` due
    deliveries in one transaction, and read what sending them needs, in message order
    (rate-limit slots go out in it). Also: when the next endpoint that cannot be claimed
    from now becomes claimable."""
    now_s, until_s = stamp(now), stamp(until)
    # A fan-out's thousand heads share a handful of times: each is parsed once.
    seen: dict[str | None, datetime | None] = {None: None}

    def when(text: str | None) -> datetime | None:
        found = seen.get(text, _UNSEEN)
        if found is _UNSEEN:
            found = seen[text] = _when(text)
        return found  # type: ignore[return-value]

    with transaction(db) as cur:
        rows = cur.execute(_HEADS, (now_s,)).fetchall()
        heads = [
            QueueHead(
                r[0],
                r[1],
                when(r[2]),
                when(r[3]),
                r[4],
                r[5],
                when(r[6]),
                when(r[7]),
                r[8],
                bool(r[9]),
            )
            for r in rows
        ]
        plan = plan_claim(heads, now, limit, policy)
        firsts = {h.endpoint_id: (h, r[10]) for h, r in zip(heads, rows, strict=True)}
        taken = []
        for ep, k in plan.take.items():
            head, first = firsts[ep]
            claim_end = head.claim_end
            if (
                k == 1
                and not head.ordered
                and first is not None
                and head.pending_at is not None
                and head.pending_at <= now
                and (claim_end is None or claim_end > now or claim_end >= head.pending_at)
            ):
                taken.append(first)  # its earliest due delivery: no lapsed claim before it
                continue
            query = _DUE_HEADS if head.ordered else _DUE
            taken.extend(row[0] for row in cur.execute(query, (ep, now_s, k)).fetchall())
        if not taken:
            return [], plan.next_wake, plan.watch
        # One statement, as _DETAILS below reads them (executemany of one UPDATE per id
        # took 5.0 ms for 1,000; this 1.8).
        cur.execute(
            _LEASE.format(marks=_marks(len(taken))), [until_s, lease, worker, now_s, *taken]
        )
        if plan.probes:
            probes = sorted(plan.probes)
            cur.execute(_MARK_PROBES.format(marks=_marks(len(probes))), [until_s, *probes])
        rows = cur.execute(_DETAILS.format(marks=_marks(len(taken))), taken).fetchall()
    claimed = [
        Claimed(*r[:8], json_value(r[8]), json_value(r[9]) or {}, r[10], bool(r[11]), *r[12:])
        for r in rows
    ]
    return claimed, plan.next_wake, plan.watch


def _record_successes(db: sqlite3.Connection, done: Sequence[Success], now: datetime) -> list[str]:
    """A batch of plain successes in one transaction: the attempts of deliveries that still
    exist (an endpoint or message deleted in flight takes its delivery with it), each
    delivery done under the lease that claimed it, the next head of each ordered key that
    finished, and endpoints failing no more.

    Returns the endpoints whose circuit these successes close."""
    now_s = stamp(now)
    with transaction(db) as cur:
        wanted = [d.delivery_id for d in done]
        found = cur.execute(_PRESENT.format(marks=_marks(len(wanted))), wanted).fetchall()
        present = {r[0] for r in found}
        kept = [
            (
                d.attempt_id,
                d.msg_id,
                d.endpoint_id,
                d.app_id,
                d.url,
                d.status_code,
                d.response,
                d.duration_ms,
                d.trigger,
                stamp(d.at),
            )
            for d in done
            if d.delivery_id in present
        ]
        if kept:
            cur.executemany(_INSERT_ATTEMPT, kept)
        cur.executemany(_MOVE_ON, [(d.attempt_count, now_s, d.delivery_id, d.lease) for d in done])
        # Heads that finished: their keys' next deliveries are the heads (store/heads.py).
        keys = sorted({(r[1], r[2]) for r in found if r[2] is not None})
        if keys:
            cur.executemany(_PROMOTE, keys)
        endpoints = sorted({d.endpoint_id for d in done if d.delivery_id in present})
        if endpoints:
            cur.execute(_NOT_FAILING.format(marks=_marks(len(endpoints))), endpoints)
        every = sorted({d.endpoint_id for d in done})
        return [r[0] for r in cur.execute(_NOT_CLOSED.format(marks=_marks(len(every))), every)]
