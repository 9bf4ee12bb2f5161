"""Time partitions on PostgreSQL: ``messages`` is range-partitioned by its id,
``deliveries`` and ``attempts`` by their message's id, on identical windows.

Ids sort by creation time (ids.py), so a range of message ids is a range of time: a
window's three partitions hold the messages created in it and their deliveries and
attempts, however late those were made (a retry, a resend). Dropping a window's partitions
(attempts, then deliveries, then messages) removes exactly that window's history, as
retention's batches would, without a DELETE.

Partitions are contiguous: the first of each table (``<table>_0``, the table as it was
before its conversion, migrations 0017 and 0019) runs from MINVALUE; each one after it
starts where the last ended (the table's *frontier*) and ends on a multiple of the width
(POSTBACK_PARTITION_WIDTH) since the epoch, so the three tables' later windows coincide
(attempts' first ones, older than messages_0's end, are finer). Creating them is
idempotent and safe from any number of processes at once: under one transaction advisory
lock, the frontiers are read again and only what is missing is made. A new partition is
made empty and then attached, which takes only SHARE UPDATE EXCLUSIVE on its parent:
inserts and reads go on meanwhile.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from postback import ids

Row = dict[str, Any]
# The partitioned tables, in the order a window's partitions are dropped: no row outlives
# the message it belongs to.
TABLES = ("attempts", "deliveries", "messages")
KEY = {"attempts": "msg_id", "deliveries": "msg_id", "messages": "id"}
# Any fixed numbers: partition creation, and drops against revivals (resend, recover,
# replay take the shared side, so no old delivery becomes pending while a drop decides).
ENSURE_LOCK = 0x70617274
DROP_LOCK = 0x64726F70
LOCK_TIMEOUT = "2s"  # a DDL waiting on a long reader must not hold writers behind it
# A drop takes ACCESS EXCLUSIVE on the parent: ingest writes messages and deliveries at
# almost every moment and would queue behind a drop waiting for one of them, so those
# drops give up soon (the next pass tries again); only workers touch attempts.
DROP_TIMEOUT = {"attempts": "2s", "deliveries": "100ms", "messages": "100ms"}
EVENT_ID_BATCH = 5000  # message_event_ids rows deleted per transaction after the drops
# Partitions of one table dropped by one statement: each drop's ACCESS EXCLUSIVE lock on
# the parent holds ingest back for a moment, so a pass catching up on many windows takes it
# once per group rather than once a partition.
DROP_GROUP = 16
_BOUND = re.compile(r"FROM \((MINVALUE|'([^']*)')\) TO \((MAXVALUE|'([^']*)')\)")

_LIST = sa.text(
    "SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound,"
    " c.reltuples AS rows, i.inhdetachpending AS detaching"
    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = to_regclass(:table)"
)


def window_start(at_ms: int, width_ms: int) -> int:
    return at_ms - at_ms % width_ms


def bound_ms(bound: str) -> int:
    """The millisecond a message-id bound stands for (its 10 time characters)."""
    stamp = bound.split("_", 1)[1][:10]
    value = 0
    for ch in stamp:
        value = value * 32 + ids._ALPHABET.index(ch)
    return value


def partition_name(table: str, lo_ms: int | None) -> str:
    if lo_ms is None:
        return f"{table}_0"
    return f"{table}_{datetime.fromtimestamp(lo_ms / 1000, UTC):%Y%m%d_%H%M%S}"


def _bound(lo: str | None, hi: str) -> str:
    start = "MINVALUE" if lo is None else f"'{lo}'"
    return f"FOR VALUES FROM ({start}) TO ('{hi}')"


def create_statements(table: str, lo: str | None, hi: str) -> list[str]:
    """Make one partition (``lo`` None: from MINVALUE) empty, then attach it."""
    name = partition_name(table, None if lo is None else bound_ms(lo))
    return [
        f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS)',
        f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" {_bound(lo, hi)}',
    ]


def plan_windows(frontier: str | None, now_ms: int, width_ms: int, ahead: int) -> list[str]:
    """The upper bounds of the partitions to add after ``frontier`` so that every id up to
    the end of the window ``ahead`` widths after now's has one."""
    goal = window_start(now_ms, width_ms) + (ahead + 1) * width_ms
    at = bound_ms(frontier) if frontier else window_start(now_ms, width_ms)
    out = []
    while at < goal:
        at = window_start(at, width_ms) + width_ms
        out.append(ids.floor_id(ids.MESSAGE, at))
    return out


def parse_bound(bound: str) -> tuple[str | None, str | None]:
    found = _BOUND.search(bound)
    if found is None:  # pragma: no cover - a DEFAULT partition: we never make one
        return None, None
    return found.group(2), found.group(4)


def partitions_of(conn: sa.Connection, table: str) -> list[Row]:
    """The table's partitions, oldest first: name, lo (None: MINVALUE), hi, rows (an
    estimate)."""
    out = []
    for r in conn.execute(_LIST, {"table": table}):
        lo, hi = parse_bound(r.bound)
        out.append(
            {
                "name": r.name,
                "lo": lo,
                "hi": hi,
                "rows": max(int(r.rows), 0),
                "detaching": r.detaching,
            }
        )
    return sorted(out, key=lambda p: p["lo"] or "")


def is_partitioned(conn: sa.Connection, table: str) -> bool:
    kind = conn.scalar(
        sa.text("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    )
    return kind == "p"


def ensure(conn: sa.Connection, width_s: float, ahead: int, now_ms: int | None = None) -> int:
    """Add the partitions missing up to ``ahead`` widths after now (in the caller's
    transaction, which should commit soon: it holds the advisory lock). Returns how many
    were made."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    width_ms = int(width_s * 1000)
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": ENSURE_LOCK})
    made = 0
    for table in TABLES:
        if not is_partitioned(conn, table):
            continue
        parts = partitions_of(conn, table)
        frontier = max((p["hi"] for p in parts if p["hi"]), default=None)
        wanted = plan_windows(frontier, now_ms, width_ms, ahead)
        if not wanted:
            continue
        conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        lo = frontier
        for hi in wanted:
            for sql in create_statements(table, lo, hi):
                conn.execute(sa.text(sql))
            lo, made = hi, made + 1
    return made


def missing_partition(exc: BaseException) -> bool:
    """Whether ``exc`` is a row for which its table has no partition (SQLSTATE 23514)."""
    for err in (exc, getattr(exc, "orig", None), exc.__cause__):
        if getattr(err, "sqlstate", None) == "23514" and "no partition" in str(err):
            return True
    return False


def _kept_for_longer(
    conn: sa.Connection, lo: str | None, hi: str, now_s: float, default: float
) -> bool:
    apps = conn.execute(
        sa.text(
            "SELECT id, retention_period FROM applications"
            " WHERE retention_period * 86400 > :default"
        ),
        {"default": default},
    ).all()
    for app in apps:
        since = ids.floor_id(ids.MESSAGE, int((now_s - app.retention_period * 86400) * 1000))
        found = conn.scalar(
            sa.text(
                "SELECT 1 FROM messages WHERE app_id = :app AND id >= :since AND id >= :lo"
                " AND id < :hi LIMIT 1"
            ),
            {"app": app.id, "since": since, "lo": lo or "", "hi": hi},
        )
        if found:
            return True
    return False


def _live_delivery(conn: sa.Connection, lo: str | None, hi: str) -> bool:
    """A delivery of a message in the window still pending (retrying, parked, paused) or
    being sent: its message is kept whole, attempts included."""
    return bool(
        conn.scalar(
            sa.text(
                "SELECT 1 FROM deliveries WHERE msg_id >= :lo AND msg_id < :hi"
                " AND status IN (1, 3) LIMIT 1"
            ),
            {"lo": lo or "", "hi": hi},
        )
    )


def _try(conn: sa.Connection, sql: str, **params: Any) -> bool:
    """Run ``sql``; False if it waited out ``lock_timeout`` instead."""
    try:
        conn.execute(sa.text(sql), params)
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_timeout
            return False
        raise
    return True


def _first_lo(conn: sa.Connection, table: str) -> str | None:
    """The lower bound of the table's oldest partition ('' for MINVALUE, None: none)."""
    parts = partitions_of(conn, table)
    return (parts[0]["lo"] or "") if parts else None


def _overlaps(parts: Sequence[Row], lo: str | None, hi: str) -> bool:
    """Whether one of ``parts`` holds ids of the range [lo, hi)."""
    return any((p["lo"] or "") < hi and (p["hi"] is None or p["hi"] > (lo or "")) for p in parts)


def _forget_event_ids(conn: sa.Connection, below: str) -> int:
    """Delete the eventIds of messages below ``below`` (their partitions were dropped), a
    bounded batch per transaction (``conn`` is in autocommit). Run after the drops, and by
    every pass, so a pass that stopped halfway leaves nothing behind for long."""
    gone = 0
    while True:
        n = conn.execute(
            sa.text(
                "DELETE FROM message_event_ids WHERE ctid = ANY(ARRAY("
                " SELECT ctid FROM message_event_ids WHERE msg_id < :below LIMIT :n))"
            ),
            {"below": below, "n": EVENT_ID_BATCH},
        ).rowcount
        gone += n
        if n < EVENT_ID_BATCH:
            return gone


def drop_expired(conn: sa.Connection, now_s: float, default: float) -> Row:
    """Drop the partitions whose every message is past the default period and has
    nothing left to send, where no application's longer period keeps one of them: each
    table's on the same checks over its own range, attempts before deliveries before
    messages, and a partition only once the table before holds nothing of its range, so no
    row outlives the message it belongs to. ``conn`` is in autocommit, each drop its own
    transaction; the session advisory lock ``DROP_LOCK`` keeps resends, recovers and
    replays (the only ways an old delivery becomes pending again) out from the check to
    the drop. Returns the rows removed per table (the partitions' rows) and the partitions
    dropped.

    A partition is dropped attached, not detached first: its ACCESS EXCLUSIVE lock on the
    parent waits only for the statements using the parent at that moment. A detach would
    make the partition's inherited foreign keys its own, with triggers on the tables they
    reference (SHARE ROW EXCLUSIVE, which waits for every writer of those and holds off the
    next ones), and a drop failing after its detach left the table outside its parent. On
    ``messages`` and ``deliveries``, which ingest writes at almost every moment, the drop
    gives up after ``DROP_TIMEOUT`` (100 ms) rather than queue ingest behind it; the next
    pass tries again."""
    cutoff = ids.floor_id(ids.MESSAGE, int((now_s - default) * 1000))
    done: Row = {table: 0 for table in TABLES} | {"partitions": []}
    try:
        for n, table in enumerate(TABLES):
            if not is_partitioned(conn, table):
                continue
            # What the table before still holds: this table's partitions of it stay.
            before = partitions_of(conn, TABLES[n - 1]) if n else []
            candidates = []
            for part in partitions_of(conn, table):
                if part["hi"] is None or part["hi"] > cutoff:
                    break  # oldest first: the rest are younger
                if not _overlaps(before, part["lo"], part["hi"]):
                    candidates.append(part)  # else its attempts (or deliveries) are left
            if not candidates:
                continue
            conn.execute(sa.text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
            if not _try(conn, "SELECT pg_advisory_lock(:k)", k=DROP_LOCK):
                return done  # a long resend or reader: the next pass tries again
            try:
                doomed = [
                    part
                    for part in candidates
                    if part["detaching"]  # (left detaching by an older version: dropped alike)
                    or not (
                        _kept_for_longer(conn, part["lo"], part["hi"], now_s, default)
                        or _live_delivery(conn, part["lo"], part["hi"])
                    )
                ]  # the kept ones are left to retention's batches, row by row
                conn.execute(sa.text(f"SET lock_timeout = '{DROP_TIMEOUT[table]}'"))
                for at in range(0, len(doomed), DROP_GROUP):
                    group = doomed[at : at + DROP_GROUP]
                    rows = sum(
                        int(conn.scalar(sa.text(f'SELECT count(*) FROM "{p["name"]}"')) or 0)
                        for p in group
                    )
                    listed = ", ".join(f'"{p["name"]}"' for p in group)
                    if not _try(conn, f"DROP TABLE {listed}"):
                        break  # a writer or reader of the table: the next pass tries again
                    done[table] += rows
                    done["partitions"] += names(group)
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": DROP_LOCK})
        if is_partitioned(conn, "messages"):
            below = _first_lo(conn, "messages")
            if below:
                done["event_ids"] = _forget_event_ids(conn, below)
    finally:
        conn.execute(sa.text("RESET lock_timeout"))
    return done


def table_sizes_sql() -> sa.TextClause:
    """Rows (the planner's estimate) and bytes per table, a partitioned one summed over its
    partitions (the parent itself holds nothing)."""
    leaves = "FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf"
    return sa.text(
        "SELECT c.relname,"
        " CASE WHEN c.relkind = 'p' THEN"
        f" (SELECT coalesce(sum(greatest(l.reltuples, 0)), 0) {leaves})"
        " ELSE c.reltuples END AS reltuples,"
        " CASE WHEN c.relkind = 'p' THEN"
        f" (SELECT coalesce(sum(pg_total_relation_size(l.oid)), 0) {leaves})"
        " ELSE pg_total_relation_size(c.oid) END AS bytes"
        " FROM pg_class c"
        " WHERE c.relkind IN ('r', 'p') AND c.relnamespace = current_schema()::regnamespace"
        " AND c.relname = ANY(:names)"
    )


def names(parts: Sequence[Row]) -> list[str]:
    return [p["name"] for p in parts]
