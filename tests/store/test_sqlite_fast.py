"""SQLite's hot paths (store/sqlite/ingest.py, store/sqlite/raw.py): they write through the
sqlite3 connection, not SQLAlchemy, so these tests hold them to what SQLAlchemy writes and
to the general path's semantics."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from postback import ids
from postback.domain import AttemptResult, MessageStatus, RetrySchedule, utcnow
from postback.signing import generate_secret
from postback.store import schema as t
from postback.store.sqlite.raw import sqlite_thread
from postback.store.store import Store
from tests.support import databases
from tests.support.server import SECRET_BOX

NOW = utcnow().replace(microsecond=123456)


@pytest.fixture
async def lite(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Store]:
    url = databases.clone_sqlite(sqlite_template, tmp_path / "fast.db")
    store = Store.connect(url, secret_box=SECRET_BOX)
    store.clock = lambda: NOW
    yield store
    await store.close()


def _raw_rows(path: str, table: str, where: str, skip: set[str]) -> list[dict[str, Any]]:
    """Every column but ``skip``, as {column: (SQLite storage class, stored value)}."""
    with sqlite3.connect(path) as db:
        cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1] not in skip]
        picked = ", ".join(f"typeof({c}), {c}" for c in cols)
        rows = db.execute(f"SELECT {picked} FROM {table} WHERE {where}").fetchall()
    return [{c: (r[2 * i], r[2 * i + 1]) for i, c in enumerate(cols)} for r in rows]


async def test_group_commit_writes_exactly_what_sqlalchemy_writes(lite: Store) -> None:
    app = await lite.create_app({"name": "a"})
    secret = generate_secret()
    eps = [
        await lite.create_endpoint(app["id"], {"url": "http://127.0.0.1:9/a", "secret": secret}),
        await lite.create_endpoint(
            app["id"],
            {"url": "http://127.0.0.1:9/b", "secret": secret, "projection": {"include": ["/a"]}},
        ),
        await lite.create_endpoint(
            app["id"],
            {"url": "http://127.0.0.1:9/c", "secret": secret, "payload_filter": {"a": 2}},
        ),
    ]
    values = {
        "event_type": "invoice.paid",
        "event_id": "fast",
        "payload": b'{"a":1,"b":"\xc3\xa9"}',
        "channels": ["eu", "vip"],
        "tags": ["t1"],
        "deliver_at": NOW + timedelta(hours=1),
        "retention_seconds": 3600,
    }
    fast, created = await lite.create_message(app["id"], values)
    assert created
    # The same message through the general path (SQLAlchemy's statements).
    slow = fast | {"id": ids.new_id(ids.MESSAGE), "event_id": "slow"}
    async with lite.engine.begin() as conn:
        assert await lite._insert_message(conn, slow) == 2

    path = str(lite.engine.url.database)
    skip = {"id", "event_id", "seq"}
    m_fast, m_slow = (_raw_rows(path, "messages", f"id = '{m['id']}'", skip) for m in (fast, slow))
    assert m_fast == m_slow and m_fast[0]["payload"][0] == "blob"
    assert m_fast[0]["channels"] == ("text", '["eu", "vip"]')
    skip = {"id", "msg_id"}
    d_fast, d_slow = (
        _raw_rows(path, "deliveries", f"msg_id = '{m['id']}' ORDER BY endpoint_id", skip)
        for m in (fast, slow)
    )
    assert d_fast == d_slow and len(d_fast) == len(eps)
    # And the store reads it back as it reads its own: aware datetimes, decoded JSON.
    back = await lite.get_message(app["id"], fast["id"])
    assert back["deliver_at"] == NOW + timedelta(hours=1)
    assert back["channels"] == ["eu", "vip"] and back["payload"] == values["payload"]


async def test_a_batch_that_cannot_commit_fails_every_caller_and_keeps_nothing(
    lite: Store, tmp_path: Path
) -> None:
    app = await lite.create_app({"name": "a"})
    await lite.create_endpoint(
        app["id"], {"url": "http://127.0.0.1:9/a", "secret": generate_secret()}
    )
    # Another process holds the write lock past the store's busy timeout.
    async with sqlite_thread(lite.engine) as run:
        await run(lambda db: db.execute("PRAGMA busy_timeout=200"))
    holder = sqlite3.connect(tmp_path / "fast.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        out = await asyncio.gather(
            *(
                lite.create_message(app["id"], {"event_type": "e", "payload": b"{}"})
                for _ in range(5)
            ),
            return_exceptions=True,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert all(isinstance(o, sqlite3.OperationalError) for o in out), out
    async with lite.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(t.deliveries)) == 0
    # The connection is usable again once the lock is gone.
    _, created = await lite.create_message(app["id"], {"event_type": "e", "payload": b"{}"})
    assert created


async def test_claim_and_record_write_what_the_general_path_writes(lite: Store) -> None:
    """A batch of plain successes takes the SQLite backend's record_successes; a batch holding a
    failure takes the general (SQLAlchemy) path. The success rows both write are the same."""
    app = await lite.create_app({"name": "a"})
    ep = await lite.create_endpoint(
        app["id"],
        {"url": "http://127.0.0.1:9/a", "secret": generate_secret(), "headers": {"x-a": "1"}},
    )
    other = await lite.create_endpoint(
        app["id"], {"url": "http://127.0.0.1:9/b", "secret": generate_secret()}
    )
    for _ in range(2):
        await lite.create_message(app["id"], {"event_type": "e", "payload": b'{"n":1}'})
    claimed = await lite.claim_due_deliveries(10, 30)
    assert len(claimed) == 4 and [c.delivery_id for c in claimed] == sorted(
        c.delivery_id for c in claimed
    )
    assert {c.endpoint_id: c.headers for c in claimed} == {ep["id"]: {"x-a": "1"}, other["id"]: {}}
    assert all(c.payload == b'{"n":1}' and len(c.secrets) == 1 for c in claimed)
    # Claimed rows: leased until now + 30 s, readable by the general path.
    health = await lite.queue_health(overdue_after=60)
    assert health["sending"] == 4 and health["due"] == 0
    async with lite.engine.connect() as conn:
        due = await conn.scalar(sa.select(sa.func.min(t.deliveries.c.next_attempt_at)))
    assert due == NOW + timedelta(seconds=30)

    async with lite.engine.begin() as conn:  # the endpoint was failing
        await conn.execute(
            t.endpoints.update().where(t.endpoints.c.id == ep["id"]).values(failing_since=NOW)
        )
    (fast,) = [c for c in claimed if c.endpoint_id == ep["id"]][:1]
    slow, failed = [c for c in claimed if c is not fast][:2]
    schedule = RetrySchedule((60,))

    def result(c: Any, code: int) -> AttemptResult:
        return AttemptResult(c, NOW, code, "ok", 3)

    await lite.record_attempts([result(fast, 200)], schedule)
    async with lite.engine.connect() as conn:
        still = await conn.scalar(
            sa.select(t.endpoints.c.failing_since).where(t.endpoints.c.id == ep["id"])
        )
    assert still is None  # a success ends the failure clock
    await lite.record_attempts([result(slow, 200), result(failed, 500)], schedule)

    path = str(lite.engine.url.database)
    a_fast, a_slow = (
        _raw_rows(
            path,
            "attempts",
            f"msg_id = '{c.msg_id}' AND endpoint_id = '{c.endpoint_id}'",
            {"id", "msg_id", "endpoint_id", "url"},
        )
        for c in (fast, slow)
    )
    assert a_fast == a_slow and a_fast[0]["status"] == ("integer", 0)
    skip = {"id", "msg_id", "endpoint_id"}
    d_fast, d_slow = (
        _raw_rows(path, "deliveries", f"id = '{c.delivery_id}'", skip) for c in (fast, slow)
    )
    assert d_fast == d_slow and d_fast[0]["status"] == ("integer", MessageStatus.SUCCESS)
