"""Retention at scale (issue 19, item 5): a retention pass over a database holding 10 M
attempts, run by the service's own worker, and what ingest and delivery latency do while it
runs.

``load_history`` fills a migrated database in SQL (``INSERT … SELECT`` over generated
numbers, never the API): messages spread over past days, one delivery per endpoint each
and three attempts per delivery (two 503s, then a 200, with small answers as receivers
send them). Most are past the bench's retention period (``KEEP``), the rest recent, with a
day free of messages on each side of the cutoff, so the counts left after the pass are
known exactly however long the bench takes. One old message has a delivery still pending
(parked, retrying next month): the pass must keep it whole. Ids are ids.py's, made in SQL
from each row's time, so rows land where the service's own rows of that time would: on
PostgreSQL in the partitions of their day (messages, deliveries and attempts alike), laid
out as on a database migrated before the first of them (store/pg/partitions.py).

``bench_retention`` then starts the service (``serve`` on SQLite; ``api`` and a pinned
``worker`` on PostgreSQL) with ``POSTBACK_RETENTION_PERIOD`` set to ``KEEP``, drives an
open-loop ingest to a loopback receiver, and lets the worker's housekeeping run the pass as
in service: a call of at most 20 s each round (a minute), until one reaches the end. Each
call's start and end are read from the ``housekeeping`` row; a message sent during a call
counts for the pass, one sent between calls (and before the first) for the baseline, so the
two sides alternate in the same run. Reported: the pass (calls, work and wall time, rows
and partitions removed), ingest request p99 and accept→received p99 on both sides.

    python bench/retention.py --db postgresql --attempts 200000
    python bench/run.py --only retention     (both databases; bench/RESULTS.md)

The number of attempts is ``--attempts``, else ``POSTBACK_BENCH_RETENTION_ATTEMPTS``, else
10,000,000.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import harness as h
import sqlalchemy as sa

from postback import ids
from postback.domain import MessageStatus, encode_json
from postback.store import schema as t
from postback.store.pages import Page
from postback.store.pg import partitions
from postback.store.retention import PARTITIONS_AHEAD
from postback.store.store import Store

DAY_MS = 86_400_000
KEEP = 7  # days: the bench service's POSTBACK_RETENTION_PERIOD
OLD_DAYS = (28, 8)  # old messages: from 28 to 8 days ago (past KEEP)
RECENT_DAYS = (6, 0)  # recent ones: from 6 days ago to a few minutes ago
ENDPOINTS = 1  # deliveries per message
TRIES = 3  # attempts per delivery: 503, 503, 200
RETRY_MS = (0, 5_000, 305_000)  # each attempt's time after its message (5 s, then 5 min)
ANSWERS = (
    (int(MessageStatus.FAIL), 503, '{"error":"service unavailable","retry_after":5}', 31),
    (int(MessageStatus.FAIL), 503, '{"error":"service unavailable","retry_after":300}', 29),
    (int(MessageStatus.SUCCESS), 200, '{"received":true}', 12),
)
EVENT_BODY = {
    "type": h.EVENT,
    "data": {
        "id": "in_1MtHbELkdIwHu7ixl4OzzPMv",
        "customer": "cus_NffrFeUfNV2Hib",
        "amount_paid": 2000,
        "currency": "usd",
        "lines": [{"price": "price_1MtGUsLkdIwHu7ix1be5Ljaj", "quantity": 1}],
        "status": "paid",
        "hosted_invoice_url": "https://invoice.example.com/i/acct_1M2JTkLkdIwHu7ix/test",
    },
}
PAYLOAD = encode_json(EVENT_BODY)
PAYLOAD_DAYS = 90  # payloads expire 90 days after their message (store/messages.py)
LOAD_CHUNK = 200_000  # messages per INSERT statement


# ---- ids in SQL --------------------------------------------------------------------------


def stamp_sql(ms: str) -> str:
    """SQL for ids.py's 10 time characters of the millisecond ``ms`` (an SQL integer
    expression): five bits a character, most significant first, from the same alphabet."""
    return " || ".join(
        f"substr('{ids._ALPHABET}', CAST((({ms}) >> {shift}) & 31 AS INTEGER) + 1, 1)"
        for shift in range(45, -1, -5)
    )


@dataclass(frozen=True)
class Dialect:
    """What differs between the two databases' SQL for the load."""

    name: str

    def numbers(self, first: int, last: int) -> str:
        """A CTE ``nums(g)``: the integers ``first`` to ``last``."""
        if self.name == "postgresql":
            return f"nums(g) AS (SELECT generate_series({first}::bigint, {last}::bigint))"
        return f"nums(g) AS (SELECT {first} UNION ALL SELECT g + 1 FROM nums WHERE g < {last})"

    def digits(self, n: str) -> str:
        """``n`` as 10 decimal digits (the ids' sequence part)."""
        if self.name == "postgresql":
            return f"lpad(({n})::text, 10, '0')"
        return f"printf('%010d', {n})"

    def when(self, ms: str) -> str:
        """The stored form of the time ``ms``: timestamptz, or SQLite's naive UTC text as
        SQLAlchemy writes it (microseconds, six digits)."""
        if self.name == "postgresql":
            return f"to_timestamp(({ms}) / 1000.0)"
        return (
            f"strftime('%Y-%m-%d %H:%M:%S', ({ms}) / 1000, 'unixepoch')"
            f" || printf('.%06d', (({ms}) % 1000) * 1000)"
        )


# ---- the history ---------------------------------------------------------------------------


@dataclass
class Segment:
    """Messages ``first`` to ``first + count - 1``, one every ``step_ms`` from ``t0_ms``."""

    first: int
    count: int
    t0_ms: int
    step_ms: int

    def ms(self) -> str:
        return f"({self.t0_ms} + (g - {self.first}) * {self.step_ms})"


@dataclass
class History:
    """What the loader wrote, for the checks after the pass."""

    app_id: str
    endpoints: list[str]
    old: int  # messages past KEEP
    recent: int
    pending: str  # the old message whose delivery is still pending
    cutoff_ms: int  # the middle of the free day around now - KEEP
    seconds: float = 0.0
    partitions: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return self.old + self.recent

    def attempts(self, messages: int) -> int:
        return messages * ENDPOINTS * TRIES


def plan(attempts: int, now_ms: int) -> tuple[list[Segment], int]:
    """The old and the recent segment for ``attempts`` attempts, one message rate over both
    spans (so about three quarters are old); and the number of old messages."""
    messages = attempts // (ENDPOINTS * TRIES)
    old_span = (OLD_DAYS[0] - OLD_DAYS[1]) * DAY_MS
    recent_span = (RECENT_DAYS[0] - RECENT_DAYS[1]) * DAY_MS - 600_000  # not the last 10 min
    old = messages * old_span // (old_span + recent_span)
    recent = messages - old
    return [
        Segment(0, old, now_ms - OLD_DAYS[0] * DAY_MS, max(1, old_span // max(old, 1))),
        Segment(
            old, recent, now_ms - RECENT_DAYS[0] * DAY_MS, max(1, recent_span // max(recent, 1))
        ),
    ], old


def _insert_statements(d: Dialect, seg: Segment, tag: str, app_id: str, eps: list[str]) -> list:
    """The three INSERT … SELECT of one segment (messages, deliveries, attempts)."""
    ms = seg.ms()
    last = seg.first + seg.count - 1
    with_nums = f"WITH RECURSIVE {d.numbers(seg.first, last)}"
    msg_id = f"'msg_' || s || '{tag}' || {d.digits('g')}"
    rows = f"SELECT g, ms, {stamp_sql('ms')} AS s FROM (SELECT g, {ms} AS ms FROM nums) AS x"
    endpoints = " UNION ALL ".join(f"SELECT {e} AS e, '{ep}' AS ep" for e, ep in enumerate(eps))
    tries = " UNION ALL ".join(
        f"SELECT {k} AS k, {RETRY_MS[k]} AS off, {a[0]} AS status, {a[1]} AS code,"
        f" CAST(:answer{k} AS TEXT) AS answer, {a[3]} AS took"
        for k, a in enumerate(ANSWERS)
    )
    expunge = f"ms + {PAYLOAD_DAYS * DAY_MS}"
    seq = ", seq" if d.name == "sqlite" else ""
    seq_value = ", :seq0 + g" if d.name == "sqlite" else ""
    messages = sa.text(
        f"{with_nums} INSERT INTO messages (id, app_id, event_type, payload, created_at,"
        f" expunge_at, tx{seq})"
        f" SELECT {msg_id}, '{app_id}', '{h.EVENT}', :payload, {d.when('ms')},"
        f" {d.when(expunge)}, 0{seq_value} FROM ({rows}) AS y"
    ).bindparams(sa.bindparam("payload", type_=sa.LargeBinary))
    dlv_n = f"g * {ENDPOINTS} + eps.e"
    deliveries = sa.text(
        f"{with_nums} INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status,"
        " attempt_count, trigger_type, rate_slot, head, created_at, updated_at)"
        f" SELECT 'dlv_' || s || '{tag}' || {d.digits(dlv_n)}, {msg_id}, eps.ep, '{app_id}',"
        f" {int(MessageStatus.SUCCESS)}, {TRIES}, 0, false, false, {d.when('ms')},"
        f" {d.when(f'ms + {RETRY_MS[-1]}')}"
        f" FROM ({rows}) AS y CROSS JOIN ({endpoints}) AS eps"
    )
    at = "ms + tries.off"
    attempts = sa.text(
        f"{with_nums} INSERT INTO attempts (id, msg_id, endpoint_id, app_id, url, status,"
        " response_status_code, response, response_duration_ms, trigger_type, created_at)"
        f" SELECT 'atmpt_' || ({stamp_sql(at)}) || '{tag}'"
        f" || {d.digits(f'({dlv_n}) * {TRIES} + tries.k')}, {msg_id}, eps.ep, '{app_id}',"
        f" 'https://hooks.example.com/postback/' || eps.e, tries.status, tries.code,"
        f" tries.answer, tries.took, 0, {d.when(at)}"
        f" FROM ({rows}) AS y CROSS JOIN ({endpoints}) AS eps CROSS JOIN ({tries}) AS tries"
    )
    return [messages, deliveries, attempts]


def _chunks(seg: Segment, size: int) -> Iterator[Segment]:
    for first in range(seg.first, seg.first + seg.count, size):
        count = min(size, seg.first + seg.count - first)
        yield Segment(first, count, seg.t0_ms + (first - seg.first) * seg.step_ms, seg.step_ms)


def _lay_partitions(conn: sa.Connection, first_ms: int, width_s: float) -> int:
    """Partitions of ``messages``, ``deliveries`` and ``attempts`` as on a database migrated
    before ``first_ms`` whose processes have made theirs every day since: the migrations'
    (empty) ones are replaced by ``<table>_0`` up to ``first_ms``'s window, then
    partitions.ensure makes each window from there to 3 ahead of now. Returns how many
    partitions attempts has."""
    first = partitions.window_start(first_ms, int(width_s * 1000))
    kept = []
    for table in partitions.TABLES:
        if not partitions.is_partitioned(conn, table):
            continue
        for part in partitions.partitions_of(conn, table):
            name = part["name"]
            if conn.scalar(sa.text(f'SELECT count(*) FROM "{name}"')):
                # Rows of today (the set-up's): put back once the windows are laid out.
                conn.execute(sa.text(f'CREATE TEMP TABLE "keep_{name}" AS TABLE "{name}"'))
                kept.append((table, f"keep_{name}"))
            conn.execute(sa.text(f'ALTER TABLE {table} DETACH PARTITION "{name}"'))
            conn.execute(sa.text(f'DROP TABLE "{name}"'))
        for sql in partitions.create_statements(table, None, ids.floor_id(ids.MESSAGE, first)):
            conn.execute(sa.text(sql))
    partitions.ensure(conn, width_s, PARTITIONS_AHEAD)
    for table, keep in kept:
        conn.execute(sa.text(f'INSERT INTO {table} TABLE "{keep}"'))
        conn.execute(sa.text(f'DROP TABLE "{keep}"'))
    return len(partitions.partitions_of(conn, "attempts"))


async def load_history(store: Store, attempts: int, say: Any = print) -> History:
    """Write the history (module docstring) into ``store``'s migrated database."""
    started = time.monotonic()
    d = Dialect(store.backend.name)
    app = await store.create_app({"name": "history"})
    eps = []
    for e in range(ENDPOINTS):
        ep = await store.create_endpoint(
            app["id"],
            {"url": f"https://hooks.example.com/postback/{e}", "secret": h.generate_secret()},
        )
        eps.append(ep["id"])
    now_ms = int(time.time() * 1000)
    segments, old = plan(attempts, now_ms)
    tag = ids.new_id("h")[-6:]
    history = History(
        app["id"],
        eps,
        old,
        segments[1].count,
        f"msg_{ids._encode(segments[0].t0_ms + old // 3 * segments[0].step_ms, 10)}{tag}"
        f"{old // 3:010d}",
        now_ms - KEEP * DAY_MS,
    )
    if d.name == "postgresql":
        async with store.engine.begin() as conn:
            history.partitions = await conn.run_sync(_lay_partitions, segments[0].t0_ms, 86400.0)
    async with store.engine.connect() as conn:
        seq0 = (await conn.scalar(sa.select(sa.func.max(t.messages.c.seq)))) or 0
    params = {"payload": PAYLOAD, "seq0": seq0 + 1} | {
        f"answer{k}": answer for k, (_, _, answer, _) in enumerate(ANSWERS)
    }
    for seg in segments:
        for chunk in _chunks(seg, LOAD_CHUNK):
            async with store.engine.begin() as conn:
                for stmt in _insert_statements(d, chunk, tag, app["id"], eps):
                    await conn.execute(stmt, params)
            say(f"    loaded messages {chunk.first + chunk.count:,} of {history.messages:,}")
    # The old message still retrying: its delivery pending, parked until next month.
    async with store.engine.begin() as conn:
        stmt = (
            t.deliveries.update()
            .where(t.deliveries.c.msg_id == history.pending)
            .values(
                status=int(MessageStatus.PENDING),
                wake_at=datetime.now(UTC) + timedelta(days=30),
                attempt_count=TRIES,
            )
        )
        assert (await conn.execute(stmt)).rowcount == ENDPOINTS
    await settle(store)
    history.seconds = time.monotonic() - started
    return history


async def settle(store: Store) -> None:
    """After the load, the state a database that grew over weeks would be in: vacuumed and
    analyzed (PostgreSQL; this server runs without autovacuum), the WAL folded into the
    file (SQLite), the dirty pages written out."""
    if store.backend.name == "postgresql":
        async with store.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("VACUUM (ANALYZE) messages, deliveries, attempts"))
            await conn.execute(sa.text("CHECKPOINT"))
    else:
        path = store.engine.url.database or ""
        with contextlib.closing(sqlite3.connect(path, timeout=60)) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await asyncio.to_thread(os.sync)


async def counts(store: Store, app_id: str) -> dict[str, int]:
    """Rows of ``app_id`` in each table of records."""
    out = {}
    async with store.engine.connect() as conn:
        for table in (t.messages, t.deliveries, t.attempts):
            stmt = sa.select(sa.func.count()).select_from(table).where(table.c.app_id == app_id)
            out[table.name] = int(await conn.scalar(stmt) or 0)
    return out


# ---- the row ---------------------------------------------------------------------------------

RATE = 150  # messages/s of open-loop ingest for the whole run
BEFORE = 45.0  # seconds of load measured before the pass is let run
MARGIN = 2.0  # seconds around a call whose messages count for neither side
WAIT_MAX = 3 * 3600.0  # a pass not complete by then fails the row
FAR = timedelta(days=1)


@dataclass
class Sent:
    sent: float  # unix time the POST went
    accepted: float  # unix time its answer came back
    msg_id: str


@dataclass
class Call:
    """One call of the pass, as the housekeeping row tells it."""

    started: float
    finished: float
    result: dict[str, Any]


async def _set_due(store: Store, due: datetime | None) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            t.housekeeping.update().where(t.housekeeping.c.name == "retention").values(due_at=due)
        )


def _unix(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def _watch(store: Store, calls: list[Call], until: float) -> None:
    """The pass's calls as they finish, until one reaches the end of the messages."""
    seen = None
    while time.time() < until:
        status = await store.retention_status()
        result = status or {}
        if result.get("started_at") and result["started_at"] != seen:
            seen = result["started_at"]
            calls.append(Call(_unix(result["started_at"]), _unix(result["finished_at"]), result))
            if result["complete"]:
                return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the retention pass did not complete in {WAIT_MAX:.0f} s")


async def _drive(base: str, app_id: str, store: Store) -> tuple[list[Sent], list[Call]]:
    """Open-loop ingest at RATE for the whole run: BEFORE seconds without the pass, then
    the pass let run (due now) until its last call, and a few seconds after."""
    sent: list[Sent] = []
    calls: list[Call] = []
    auth = {"authorization": f"Bearer {h.TOKEN}", "content-type": "application/json"}
    url = f"{base}/api/v1/app/{app_id}/msg"
    body = encode_json({"eventType": h.EVENT, "payload": EVENT_BODY})
    stop = asyncio.Event()

    async def load() -> None:
        async with aiohttp.ClientSession(headers=auth) as s:

            async def one() -> None:
                t0 = time.time()
                async with s.post(url, data=body) as r:
                    answer = await r.json()
                    if r.status < 300:
                        sent.append(Sent(t0, time.time(), answer["id"]))

            for _ in range(20):  # warm-up: connections, caches
                await one()
            sent.clear()
            tasks: set[asyncio.Task[None]] = set()
            start, i = time.monotonic(), 0
            while not stop.is_set():
                await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            await asyncio.gather(*tasks)

    loading = asyncio.create_task(load())
    try:
        await asyncio.sleep(BEFORE)
        await _set_due(store, None)  # the worker's next housekeeping round takes it
        await _watch(store, calls, time.time() + WAIT_MAX)
        await asyncio.sleep(MARGIN + 1)
    finally:
        stop.set()
        await loading
    return sent, calls


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def _side(s: Sent, calls: list[Call]) -> int | None:
    """The call ``s`` was sent during (its index), ``-1 - i`` for the gap before call ``i``
    (the first gap: before the pass), None within MARGIN of a call or after the last."""
    for i, c in enumerate(calls):
        if c.started <= s.sent <= c.finished:
            return i
        if c.started - MARGIN <= s.sent <= c.finished + MARGIN:
            return None
        if s.sent < c.started:
            return -1 - i
    return None


def _latencies(
    sent: list[Sent], arrivals: dict[str, float], calls: list[Call]
) -> dict[int, dict[str, list[float]]]:
    """Ingest (POST to its answer) and accept→received (answer to arrival) latencies in ms,
    by _side."""
    out: dict[int, dict[str, list[float]]] = {}
    for s in sent:
        side = _side(s, calls)
        if side is None:
            continue
        lat = out.setdefault(side, {"ingest": [], "worker": []})
        lat["ingest"].append((s.accepted - s.sent) * 1000)
        lat["worker"].append((arrivals[f"/live {s.msg_id}"] - s.accepted) * 1000)
    return out


def _pooled(by_side: dict[int, dict[str, list[float]]], during: bool) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"ingest": [], "worker": []}
    for side, lat in by_side.items():
        if (side >= 0) == during:
            for k in out:
                out[k] += lat[k]
    return out


def _check(history: History, after: dict[str, int], removed: dict[str, int]) -> None:
    """What the pass left is the recent history and the pending message, whole; what it
    removed is the rest of the old history, nothing else."""
    kept = history.recent + 1
    per = {"messages": 1, "deliveries": ENDPOINTS, "attempts": ENDPOINTS * TRIES}
    for table, n in per.items():
        assert after[table] == kept * n, (table, after[table], kept * n)
        assert removed[table] == (history.old - 1) * n, (table, removed[table])


async def _partitions_left(store: Store, history: History) -> list[str]:
    """The partitions of attempts wholly past the cutoff still there (PostgreSQL)."""
    cutoff = ids.floor_id(ids.MESSAGE, history.cutoff_ms)
    async with store.engine.connect() as conn:
        parts = await conn.run_sync(partitions.partitions_of, "attempts")
    return [p["name"] for p in parts if p["hi"] <= cutoff]


def bench_retention(db: h.Database, attempts: int | None = None) -> h.Row:
    default = 10_000_000
    attempts = attempts or int(os.environ.get("POSTBACK_BENCH_RETENTION_ATTEMPTS", default))
    with h.receiver() as hook:

        async def setup() -> tuple[History, str, int]:
            store = await h.open_store(db)
            try:
                live, _ = await h.make_app(store, [hook + "/live"])
                history = await load_history(store, attempts, say=lambda *_: None)
                await _set_due(store, datetime.now(UTC) + FAR)  # not before we say so
                size = sum(int(f["bytes"] or 0) for f in await store.storage_figures())
            finally:
                await store.close()
            return history, live, size

        history, live, size_before = asyncio.run(setup())
        print(
            f"    loaded {history.attempts(history.messages):,} attempts"
            f" ({history.messages:,} messages) in {history.seconds:.0f} s",
            flush=True,
        )
        env = {"POSTBACK_RETENTION_PERIOD": f"{KEEP}d"}
        with _service(db, env) as base:

            async def run() -> tuple[list[Sent], list[Call]]:
                store = Store.connect(db.url)
                try:
                    return await _drive(base, live, store)
                finally:
                    await store.close()

            sent, calls = asyncio.run(run())

            def arrived() -> bool:
                times = h.receiver_json(hook, "/_times")
                return all(f"/live {s.msg_id}" in times for s in sent)

            h.wait_for(arrived, 120, "the live messages", every=0.5)
            arrivals = h.receiver_json(hook, "/_times")

        async def after() -> tuple[dict[str, int], dict[str, int], list[str]]:
            store = Store.connect(db.url)
            try:
                pending = await store.list_attempts(
                    history.app_id, Page(limit=10), msg_id=history.pending
                )
                assert len(pending.rows) == ENDPOINTS * TRIES, pending.rows  # kept whole
                left, live_left = await counts(store, history.app_id), await counts(store, live)
                old_parts = await _partitions_left(store, history) if db.name != "SQLite" else []
            finally:
                await store.close()
            return left, live_left, old_parts

        left, live_left, old_parts = asyncio.run(after())
    removed = {
        k: sum(int(c.result[k]) for c in calls) for k in ("messages", "deliveries", "attempts")
    }
    for c in calls:
        r = c.result
        print(
            f"    call {c.finished - c.started:5.1f} s: {r['messages']:,} messages,"
            f" {r['attempts']:,} attempts, {len(r['partitions_dropped'])} partitions,"
            f" {r['batches']} batches (median {r['median_batch_ms']} ms,"
            f" max {r['max_batch_ms']} ms)",
            flush=True,
        )
    _check(history, left, removed)
    assert live_left["messages"] >= len(sent), live_left  # the live traffic: all kept
    dropped = [p for c in calls for p in c.result["partitions_dropped"]]
    if db.name != "SQLite":
        pending_part = partitions.partition_name(
            "attempts",
            partitions.window_start(partitions.bound_ms("m_" + history.pending[4:]), DAY_MS),
        )
        assert old_parts == [pending_part], old_parts
    by_side = _latencies(sent, arrivals, calls)
    pooled = {"pass": _pooled(by_side, True), "without": _pooled(by_side, False)}
    p = {side: {k: _p99(v) for k, v in lat.items()} for side, lat in pooled.items()}
    ratios = {k: p["pass"][k] / p["without"][k] for k in ("ingest", "worker")}
    paired: dict[str, list[float]] = {"ingest": [], "worker": []}
    for i in range(len(calls)):  # each call beside the gap before it
        during, before = by_side.get(i), by_side.get(-1 - i)
        if during and before:
            for k in paired:
                paired[k].append(_p99(during[k]) / _p99(before[k]))
            print(
                f"    call {i + 1}: ingest p99 {_p99(during['ingest']):.1f} ms"
                f" (gap before {_p99(before['ingest']):.1f}), accept→received p99"
                f" {_p99(during['worker']):.1f} ms (gap before {_p99(before['worker']):.1f})"
            )
    work = sum(c.finished - c.started for c in calls)
    wall = calls[-1].finished - calls[0].started
    batches = sum(int(c.result["batches"]) for c in calls)
    longest = max(float(c.result["max_batch_ms"]) for c in calls)
    gave = sum(int(c.result.get("pages_given_back") or 0) for c in calls)
    size_after = sum(int(f["bytes"] or 0) for f in calls[-1].result["storage"])
    space = f"{size_before / 2**30:.2f} → {size_after / 2**30:.2f} GiB"
    if db.name == "SQLite":
        space += f", {gave * 4096 / 2**20:,.0f} MiB given back"
    return h.Row(
        f"retention pass over {history.attempts(history.messages):,} attempts"
        f" (live ingest {RATE}/s), {db.name}",
        f"pass {work:.0f} s of work in {len(calls)} calls over {wall:.0f} s, removed"
        f" {removed['messages']:,} messages, {removed['deliveries']:,} deliveries,"
        f" {removed['attempts']:,} attempts ({len(dropped)} partitions dropped;"
        f" tables {space}), {batches:,} batches (longest {longest:.0f} ms); during its"
        f" calls: ingest p99 {p['pass']['ingest']:.1f} ms, accept→received p99"
        f" {p['pass']['worker']:.1f} ms ({len(pooled['pass']['ingest']):,} messages)",
        f"before and between its calls: ingest p99 {p['without']['ingest']:.1f} ms,"
        f" accept→received p99 {p['without']['worker']:.1f} ms"
        f" ({len(pooled['without']['ingest']):,} messages); ratios ingest"
        f" {ratios['ingest']:.2f}, accept→received {ratios['worker']:.2f} (median of the"
        f" {len(paired['ingest'])} calls' ratios to the gap before each:"
        f" {statistics.median(paired['ingest']):.2f}, {statistics.median(paired['worker']):.2f})",
        max(ratios.values()),
        "≤ 1.2x each",
        max(ratios.values()) <= 1.2,
    )


@contextlib.contextmanager
def _service(db: h.Database, extra: dict[str, str]) -> Iterator[str]:
    """harness.service with settings of the bench's own (the retention period)."""
    port = h.free_port()
    env = h.env_for(db.url, POSTBACK_PORT=str(port), **extra)
    base = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        if db.name == "SQLite":
            stack.enter_context(_logged(h.postback("serve"), env, "serve"))
        else:
            stack.enter_context(_logged(h.postback("api", cpu=h.OTHER_CPU), env, "api"))
            stack.enter_context(_logged(h.postback("worker"), env, "worker"))
        h.wait_for(lambda: h.get_ok(base + "/api/v1/health"), 30, "service")
        yield base


@contextlib.contextmanager
def _logged(argv: list[str], env: dict[str, str], name: str) -> Iterator[h.Popen]:
    """harness.process, printing the warnings the process logged (a housekeeping round
    that failed says so there) when it ends."""
    with tempfile.NamedTemporaryFile(prefix=f"postback-{name}-", suffix=".log") as log:
        with open(log.name, "wb") as out:
            proc = h.subprocess.Popen(argv, env=env, stdout=out, stderr=h.subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except h.subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for line in Path(log.name).read_text(errors="replace").splitlines():
                if any(word in line for word in ("WARNING", "ERROR", "Traceback", "retention")):
                    print(f"    {name}: {line[:400]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--attempts", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="postback-bench-") as tmp:
        db = h.sqlite_db(Path(tmp), "retention") if args.db == "sqlite" else h.pg_db("retention")
        try:
            row = bench_retention(db, args.attempts)
        finally:
            db.drop()
    print(h.table([row]))


if __name__ == "__main__":
    main()
