"""Storage (issue 19): bytes on disk per delivered message, indexes included, per table.

Messages with a 1 KB payload go to three endpoints each and are delivered through the
store's own claim and record paths (a 200 with a small JSON answer), so the rows are the
rows the service writes. Then each table's bytes are read as the dashboard's storage panel
reads them (``Store.storage_figures``): on PostgreSQL once as the load left them (dead row
versions of the deliveries' claim and record updates included, as between two autovacuum
runs) and once after ``VACUUM FULL`` (live rows only); on SQLite after a checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time

import sqlalchemy as sa
from harness import EVENT, PAYLOAD_1K, Database, Row, make_app, open_store

from postback.delivery.scheduler import SchedulerPolicy
from postback.domain import AttemptResult, RetrySchedule, encode_json, utcnow
from postback.store.retention import TABLES
from postback.store.store import Store

ANSWER = '{"received":true}'
SCHEDULE = RetrySchedule((5.0,) * 8)
POLICY = SchedulerPolicy(max_in_flight=100_000)


async def _deliver_all(store: Store, expected: int) -> None:
    done = 0
    deadline = time.monotonic() + 600
    while done < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"storage bench: {done} of {expected} delivered in 600 s")
        claimed = await store.claim_due_deliveries(1000, 60, policy=POLICY)
        if not claimed:
            await asyncio.sleep(0.05)
            continue
        now = utcnow()
        await store.record_attempts(
            [AttemptResult(c, now, 200, ANSWER, 12) for c in claimed], SCHEDULE, policy=POLICY
        )
        done += len(claimed)


async def _sizes(store: Store) -> dict[str, int]:
    return {r["table"]: int(r["bytes"] or 0) for r in await store.storage_figures()}


def bench_storage(db: Database, messages: int = 20_000, endpoints: int = 3) -> Row:
    payload = encode_json(PAYLOAD_1K)

    async def run() -> tuple[dict[str, int], dict[str, int] | None]:
        store = await open_store(db)
        try:
            app_id, _ = await make_app(
                store, [f"http://127.0.0.1:9/s{i}" for i in range(endpoints)]
            )
            sem = asyncio.Semaphore(16)

            async def one() -> None:
                async with sem:
                    await store.create_message(app_id, {"event_type": EVENT, "payload": payload})

            await asyncio.gather(*(one() for _ in range(messages)))
            await _deliver_all(store, messages * endpoints)
            if store.backend.name == "postgresql":
                as_left = await _sizes(store)
                async with store.engine.connect() as conn:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    for name in TABLES:
                        await conn.execute(sa.text(f"VACUUM FULL {name}"))
                return as_left, await _sizes(store)
            path = store.engine.url.database or ""
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as raw:
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return await _sizes(store), None
        finally:
            await store.close()

    first, compact = asyncio.run(run())
    final = compact or first
    per = {name: final[name] / messages for name in TABLES}
    total = sum(per.values())
    parts = ", ".join(f"{name} {per[name]:,.0f}" for name in TABLES)
    value = f"{total:,.0f} B/message ({parts})"
    if compact is not None:
        value += f"; as the load left them {sum(first.values()) / messages:,.0f} B"
    return Row(
        f"bytes on disk per message delivered to {endpoints} endpoints, {db.name}",
        value,
        f"its payload {len(payload):,} B",
        total / len(payload),
        "(cost)",
        True,
    )
