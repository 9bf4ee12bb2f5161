"""Row-for-row parity of the two backends (store/backend.py).

Each backend's hot paths (writing a batch of messages, claiming, recording a batch of
successes) are written in its own SQL. On each database they must write what the general
SQLAlchemy paths write, and the same scenario must leave the same rows on SQLite and on
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from postback import ids
from postback.domain import AttemptResult, MessageStatus, RetrySchedule, utcnow
from postback.store import schema as t
from postback.store.core import OPERATIONAL_APP_ID
from postback.store.store import Store
from tests.support import databases
from tests.support.server import SECRET_BOX

NOW = utcnow().replace(microsecond=654321)
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Columns whose values are random per run (ids are mapped to labels instead), and those
# numbered by each database in its own way (the events feed's position, store/events.py).
_RANDOM = {"lease"}
_OWN_NUMBERING = {"seq", "tx"}


def _fresh(url: str) -> Store:
    store = Store.connect(url, secret_box=SECRET_BOX)
    store.clock = lambda: NOW
    return store


@pytest.fixture
async def pair(
    tmp_path: Path, pg_admin_url: str, sqlite_template: Path, pg_clones: databases.PgClones
) -> AsyncIterator[tuple[Store, Store]]:
    """A fresh SQLite store and a fresh PostgreSQL store (copies of the migrated templates)
    on the same clock."""
    name = pg_clones.take()
    lite = _fresh(databases.clone_sqlite(sqlite_template, tmp_path / "parity.db"))
    pg = _fresh(databases.with_database(pg_admin_url, name))
    try:
        yield lite, pg
    finally:
        await lite.close()
        await pg.close()
        pg_clones.give_back(name)


async def _rows(store: Store, table: sa.Table, labels: dict[str, str]) -> list[dict[str, Any]]:
    """Every row of ``table`` as the store reads it (but the operational application's),
    ids replaced by their labels, random columns by whether they are set, sorted."""
    async with store.engine.connect() as conn:
        found = [dict(r._mapping) for r in await conn.execute(sa.select(table))]
    out = []
    for row in found:
        if row.get("app_id") == OPERATIONAL_APP_ID or row.get("id") == OPERATIONAL_APP_ID:
            continue  # operational events carry ids in their payloads
        clean: dict[str, Any] = {}
        for col, value in row.items():
            if col in _OWN_NUMBERING:
                continue
            if col in _RANDOM:
                clean[col] = value is not None and value != 0
            elif isinstance(value, str) and value in labels:
                clean[col] = labels[value]
            elif col == "id" or (
                col.endswith("_id") and col != "event_id" and isinstance(value, str)
            ):
                clean[col] = "?"  # an id the scenario did not label (an attempt's)
            else:
                clean[col] = value
        out.append(clean)
    return sorted(out, key=repr)


async def _scenario(store: Store) -> dict[str, str]:
    """Messages to four endpoints (one projecting, one filtering the second message out,
    one ordered), a claim, a batch of plain successes (the backend's path) and a mixed
    batch (the general path), then a claim of the ordered key's next head. Returns labels
    for the ids it made."""
    labels: dict[str, str] = {}
    app = await store.create_app({"name": "Shop", "uid": "shop"})
    labels[app["id"]] = "app"
    specs = {
        "plain": {"headers": {"x-shop": "1"}},
        "projected": {"projection": {"include": ["/order"]}},
        "filtered": {"payload_filter": {"order.total": {"$gt": 10}}},
        "ordered": {"ordered": True},
    }
    for uid, extra in specs.items():
        ep = await store.create_endpoint(
            app["id"], {"url": f"http://127.0.0.1:9/{uid}", "secret": SECRET, "uid": uid} | extra
        )
        labels[ep["id"]] = uid
    for n, total in enumerate((50, 5)):
        msg, created = await store.create_message(
            "shop",
            {
                "event_type": "purchase.approved",
                "event_id": f"evt-{n}",
                "payload": b'{"order":{"total":%d},"buyer":"b\xc3\xa9"}' % total,
                "channels": ["br"],
                "tags": ["t"],
                "deliver_at": None,
                "ordering_key": "sub_1",
            },
            app_ref=True,
        )
        assert created
        labels[msg["id"]] = f"msg-{n}"
    # A test event through the general path (only_endpoint).
    test_msg, _ = await store.create_message(
        app["id"],
        {"event_type": "webhook.test", "event_id": "evt-test", "payload": b"{}"},
        only_endpoint=next(k for k, v in labels.items() if v == "filtered"),
    )
    labels[test_msg["id"]] = "msg-test"
    claimed = await store.claim_due_deliveries(100, 30, worker="w1")
    # 3 + 2 (the second message filtered out for one) + the ordered key's head + a test
    assert len(claimed) == 7
    for c in claimed:
        labels[c.delivery_id] = f"delivery:{labels[c.msg_id]}>{labels[c.endpoint_id]}"
    by_label = {labels[c.delivery_id]: c for c in claimed}
    schedule = RetrySchedule((60,), jitter=0)

    def result(label: str, code: int) -> AttemptResult:
        return AttemptResult(by_label[label], NOW, code, "answer", 7)

    await store.record_attempts(
        [
            result("delivery:msg-0>plain", 200),
            result("delivery:msg-1>plain", 204),
            result("delivery:msg-0>ordered", 200),  # its key's next delivery is the head
        ],
        schedule,
    )
    await store.record_attempts(
        [
            result("delivery:msg-0>projected", 200),
            result("delivery:msg-1>projected", 503),
            result("delivery:msg-test>filtered", 500),
        ],
        schedule,
    )
    (second,) = await store.claim_due_deliveries(100, 30, worker="w1")
    labels[second.delivery_id] = "delivery:msg-1>ordered"
    return labels


async def test_the_same_scenario_leaves_the_same_rows_on_both_databases(
    pair: tuple[Store, Store],
) -> None:
    lite, pg = pair
    lite_labels, pg_labels = await _scenario(lite), await _scenario(pg)
    for table in (t.messages, t.deliveries, t.attempts, t.endpoints, t.applications):
        on_lite = await _rows(lite, table, dict(lite_labels))
        on_pg = await _rows(pg, table, dict(pg_labels))
        if table is t.endpoints:  # sealed secrets differ by their random nonce
            for row in (*on_lite, *on_pg):
                row.pop("secret")
        assert on_lite == on_pg, table.name
        assert on_lite, table.name
    # The filtered endpoint's copy of the second message was canceled, with the reason.
    deliveries = await _rows(lite, t.deliveries, dict(lite_labels))
    assert sum(d["status"] == MessageStatus.CANCELED and bool(d["note"]) for d in deliveries) == 1


async def test_the_batch_writer_writes_what_the_general_path_writes(store: Store) -> None:
    """Backend.write_messages against messages.py's general path, on each database."""
    store.clock = lambda: NOW
    app = await store.create_app({"name": "a"})
    endpoints = {"a": {}, "b": {"projection": {"include": ["/a"]}}, "c": {"ordered": True}}
    for uid, extra in endpoints.items():
        await store.create_endpoint(
            app["id"], {"url": f"http://127.0.0.1:9/{uid}", "secret": SECRET, "uid": uid} | extra
        )
    values = {
        "event_type": "invoice.paid",
        "ordering_key": "sub_1",
        "event_id": "fast",
        "payload": b'{"a":1,"b":"\xc3\xa9"}',
        "channels": ["eu"],
        "tags": ["t1"],
        "deliver_at": NOW + timedelta(hours=1),
        "retention_seconds": 3600,
    }
    fast, created = await store.create_message(app["id"], values)
    assert created
    slow = fast | {"id": ids.new_id(ids.MESSAGE), "event_id": "slow"}
    async with store.engine.begin() as conn:
        assert await store._insert_message(conn, slow) == 3
    labels = {fast["id"]: "msg", slow["id"]: "msg"}
    messages = await _rows(store, t.messages, labels)
    for m in messages:
        m.pop("event_id")
    assert len(messages) == 2 and messages[0] == messages[1]
    deliveries = await _rows(store, t.deliveries, labels)
    for d in deliveries:
        d.pop("id")
        d.pop("head")  # compared below: the second of a key is not its head
    assert len(deliveries) == 6
    assert deliveries[0::2] == deliveries[1::2]  # sorted: each fast row beside its twin
    assert {d["payload"] for d in deliveries} == {None, b'{"a":1}'}
    assert sorted(str(d["ordering_key"]) for d in deliveries) == ["None"] * 4 + ["sub_1"] * 2
    # Both paths place an ordered delivery at its message's seq (_rows leaves seq out).
    d, m = t.deliveries.c, t.messages.c
    async with store.engine.connect() as conn:
        placed = await conn.execute(
            sa.select(d.seq, m.seq).join(t.messages, m.id == d.msg_id).where(d.seq.is_not(None))
        )
        assert sorted((a == b, a is not None) for a, b in placed) == [(True, True)] * 2
        # The batch writer made the first message of the key its head; the general path,
        # finding the key busy, wrote the second behind it. No unordered one is a head.
        marked = await conn.execute(sa.select(d.msg_id, d.ordering_key, d.head))
        assert sorted((m == fast["id"], k is not None, h) for m, k, h in marked) == [
            (False, False, False),
            (False, False, False),
            (False, True, False),
            (True, False, False),
            (True, False, False),
            (True, True, True),
        ]


async def test_plain_successes_record_what_the_general_path_records(store: Store) -> None:
    """Backend.record_successes against queue.py's general path, on each database."""
    store.clock = lambda: NOW
    app = await store.create_app({"name": "a"})
    for uid in ("a", "b"):
        await store.create_endpoint(
            app["id"], {"url": f"http://127.0.0.1:9/{uid}", "secret": SECRET, "uid": uid}
        )
    await store.create_message(app["id"], {"event_type": "e", "payload": b"{}"})
    first, second = await store.claim_due_deliveries(10, 30)
    schedule = RetrySchedule((60,), jitter=0)
    await store.record_attempts([AttemptResult(first, NOW, 200, "ok", 3)], schedule)  # fast
    await store.record_attempts(  # a failure beside it sends the batch the general way
        [AttemptResult(second, NOW, 200, "ok", 3), AttemptResult(first, NOW, 500, "x", 1)],
        schedule,
    )
    labels = {first.endpoint_id: "ep", second.endpoint_id: "ep"}
    attempts = [a for a in await _rows(store, t.attempts, labels) if a["status"] == 0]
    for a in attempts:
        a.pop("id")
        a.pop("url")
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(t.deliveries).order_by(t.deliveries.c.id))).all()
    done = [dict(r._mapping) for r in rows]
    for d in done:
        for col in ("id", "endpoint_id", "lease"):
            d.pop(col)
    # The first delivery's late failure came under a lease already spent: it changed nothing.
    assert done[0] == done[1] and done[0]["status"] == 0
