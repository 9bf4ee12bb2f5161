"""The claim's walk over a partitioned ``deliveries`` (PostgreSQL): HEADS (store/pg/queue.py)
with and without its floor (``msg_id >= min(msg_id) of the queued rows``), against the same
walk on an unpartitioned table (the schema before migration 0019).

Each database: 1,000 endpoints with one queued delivery each, all in the newest window,
and 10,000 finished rows (outside the queue's partial index) in every window; ``--partitions``
daily windows. The walk alone, median of ``--rounds`` runs, each its own round trip.

    PYTHONPATH=src:. python bench/claim_walk.py --partitions 30 90
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

import asyncpg

from postback import ids
from postback.store.migrate import migrate
from postback.store.pg import partitions, queue
from postback.store.store import Store

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ENDPOINTS, FINISHED = 1000, 10_000
NO_FLOOR = queue.HEADS.replace(f" AND d.{queue._AT_FLOOR}", "").replace(
    f" AND {queue._AT_FLOOR}", ""
)


def _url(name: str) -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + name


async def _fill(url: str, windows: list[int]) -> None:
    """Endpoints, FINISHED done rows in each window, one queued row per endpoint in the last."""
    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        await conn.execute(
            "INSERT INTO applications (id, name, metadata, created_at, updated_at)"
            " VALUES ('app_bench', 'bench', '{}', $1, $1)",
            now,
        )
        await conn.execute(
            "INSERT INTO endpoints (id, app_id, url, description, disabled, metadata, headers,"
            " secret, created_at, updated_at)"
            " SELECT 'ep_' || lpad(n::text, 27, '0'), 'app_bench', 'http://127.0.0.1:9/', '',"
            " false, '{}', '{}', 's', $1, $1 FROM generate_series(1, $2) n",
            now,
            ENDPOINTS,
        )
        insert = (
            "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count,"
            " trigger_type, next_attempt_at, created_at, updated_at)"
            " SELECT 'dlv_' || $1 || lpad(n::text, 16, '0'),"
            " 'msg_' || $1 || lpad(n::text, 16, '0'),"
            " 'ep_' || lpad((n % $3 + 1)::text, 27, '0'), 'app_bench', $4, 1, 0, $5, $6, $6"
            " FROM generate_series(1, $2) n"
        )
        # Their messages too: before 0019 deliveries' foreign key wants them.
        messages = (
            "INSERT INTO messages (id, app_id, event_type, created_at)"
            " SELECT 'msg_' || $1 || lpad(n::text, 16, '0'), 'app_bench', 'e', $3"
            " FROM generate_series(1, $2) n"
        )
        for w in windows:
            stamp = ids.floor_id(ids.MESSAGE, w + 1000)[4:14]
            await conn.execute(messages, stamp, FINISHED, now)
            await conn.execute(insert, stamp, FINISHED, ENDPOINTS, 0, None, now)
        stamp = ids.floor_id(ids.MESSAGE, windows[-1] + 2000)[4:14]
        await conn.execute(messages, stamp, ENDPOINTS, now)
        await conn.execute(insert, stamp, ENDPOINTS, ENDPOINTS, 1, now, now)
        await conn.execute("ANALYZE deliveries")
    finally:
        await conn.close()


async def _database(name: str, n: int, revision: str) -> list[int]:
    """A database migrated to ``revision`` with ``n`` daily windows of rows; their starts."""
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    store = Store.connect(_url(name))
    try:
        await migrate(store.engine, revision)
        await store.ensure_partitions(86400.0, ahead=n)
    finally:
        await store.close()
    day = 86_400_000
    today = partitions.window_start(int(time.time() * 1000), day)
    windows = [today + k * day for k in range(1, n + 1)]
    await _fill(_url(name), windows)
    return windows


async def _walk(url: str, sql: str, rounds: int, *extra: object) -> tuple[float, int]:
    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        found = len(await conn.fetch(sql, now, 100, *extra))  # warm
        took = []
        for _ in range(rounds):
            started = time.perf_counter()
            await conn.fetch(sql, now, 100, *extra)
            took.append(time.perf_counter() - started)
        return statistics.median(took) * 1000, found
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partitions", type=int, nargs="+", default=[30, 90])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    for n in args.partitions:
        flat, parted = f"pb_walk_flat_{n}", f"pb_walk_parted_{n}"
        try:
            await _database(flat, n, "0018")
            await _database(parted, n, "head")
            base, k0 = await _walk(_url(flat), NO_FLOOR, args.rounds)
            merged, k1 = await _walk(_url(parted), NO_FLOOR, args.rounds)
            pruned, k2 = await _walk(_url(parted), queue.HEADS, args.rounds)
            conn = await asyncpg.connect(_url(parted))
            floor = await conn.fetchval(
                "SELECT min(msg_id) FROM deliveries WHERE next_attempt_at IS NOT NULL"
            )
            await conn.close()
            given = queue.HEADS.replace("(SELECT floor FROM fl)", "$3::text")
            known, k3 = await _walk(_url(parted), given, args.rounds, floor)
            assert k0 == k1 == k2 == k3 == ENDPOINTS, (k0, k1, k2, k3)
            print(
                f"{n} windows: unpartitioned {base:.1f} ms, partitioned without the floor"
                f" {merged:.1f} ms, with it {pruned:.1f} ms, with it as a parameter"
                f" {known:.1f} ms"
            )
        finally:
            admin = await asyncpg.connect(ADMIN)
            for name in (flat, parted):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
