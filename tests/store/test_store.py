"""The store on SQLite and PostgreSQL: resources, the queue, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from postback.domain import (
    AttemptResult,
    ClaimedDelivery,
    MessageStatus,
    RetrySchedule,
    TriggerType,
    utcnow,
)
from postback.signing import decode_secret, generate_secret
from postback.store import schema
from postback.store.errors import Conflict, NotFound
from postback.store.migrate import current_revision, head_revision, migrate
from postback.store.pages import Page
from postback.store.secretbox import SecretBox, SecretKeyError
from postback.store.store import Store
from tests.support.server import SECRET_BOX


@pytest.fixture
async def second_store(database_url: str, store: Store) -> AsyncIterator[Store]:
    other = Store.connect(database_url, secret_box=SECRET_BOX)
    yield other
    await other.close()


async def _endpoint(store: Store, app_id: str, **values: object) -> dict:
    return await store.create_endpoint(
        app_id, {"url": "http://127.0.0.1:9/hook", "secret": generate_secret(), **values}
    )


async def _message(store: Store, app_id: str, event_type: str = "purchase.approved", **kw: object):
    row, created = await store.create_message(
        app_id, {"event_type": event_type, "payload": b'{"ok":true}', **kw}
    )
    return row, created


def _result(claim: ClaimedDelivery, status_code: int) -> AttemptResult:
    return AttemptResult(
        delivery=claim, at=utcnow(), status_code=status_code, response="r", duration_ms=3
    )


async def _deliveries(store: Store) -> list[dict]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(schema.deliveries))
        return [dict(r._mapping) for r in rows]


async def test_migrations_are_idempotent_and_at_head(store: Store) -> None:
    await migrate(store.engine)  # a second run changes nothing and does not fail
    assert await current_revision(store.engine) == head_revision()


async def test_applications_crud_and_uid(store: Store) -> None:
    app = await store.create_app({"name": "Acme", "uid": "acme", "metadata": {"tier": "gold"}})
    assert app["id"].startswith("app_")
    assert (await store.get_app("acme"))["id"] == app["id"]
    assert (await store.get_app(app["id"]))["metadata"] == {"tier": "gold"}
    with pytest.raises(Conflict):
        await store.create_app({"name": "Other", "uid": "acme"})
    updated = await store.update_app("acme", {"name": "Acme Inc"})
    assert updated["name"] == "Acme Inc" and updated["updated_at"] >= app["updated_at"]
    await store.delete_app(app["id"])
    with pytest.raises(NotFound):
        await store.get_app("acme")


async def test_pagination_never_skips_or_repeats(store: Store) -> None:
    made = [(await store.create_app({"name": f"a{i}"}))["id"] for i in range(7)]
    seen, iterator = [], None
    while True:
        page = await store.list_apps(Page(limit=3, iterator=iterator))
        seen += [r["id"] for r in page.rows]
        if page.done:
            break
        iterator = page.iterator
        await store.create_app({"name": "late"})  # rows added between pages
    assert seen[:7] == made and len(seen) == len(set(seen))
    newest = await store.list_apps(Page(limit=2, descending=True))
    first, second = (r["id"] for r in newest.rows)
    assert first > second
    back = await store.list_apps(Page(limit=3, iterator=f"-{made[3]}"))
    assert [r["id"] for r in back.rows] == made[0:3]


async def test_message_fans_out_to_matching_endpoints_only(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    everything = await _endpoint(store, app["id"])
    approved = await _endpoint(store, app["id"], event_types=["purchase.approved"])
    product = await _endpoint(store, app["id"], channels=["product-42"])
    await _endpoint(store, app["id"], disabled=True)

    await _message(store, app["id"], "purchase.approved")
    await _message(store, app["id"], "purchase.refunded", channels=["product-42"])
    pairs = {(d["msg_id"][-4:], d["endpoint_id"]) for d in await _deliveries(store)}
    targets = [ep for _, ep in pairs]
    assert targets.count(everything["id"]) == 2
    assert targets.count(approved["id"]) == 1
    assert targets.count(product["id"]) == 1
    assert len(pairs) == 4


async def test_event_id_dedupes_within_an_app(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    await _endpoint(store, app["id"])
    first, created = await _message(store, app["id"], event_id="evt-1")
    again, created_again = await _message(store, app["id"], event_id="evt-1")
    assert created and not created_again and again["id"] == first["id"]
    assert len(await _deliveries(store)) == 1
    assert (await store.get_message(app["id"], "evt-1"))["id"] == first["id"]


async def test_claim_leases_and_expired_leases_come_back(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    ep = await _endpoint(store, app["id"], headers={"x-tenant": "7"})
    msg, _ = await _message(store, app["id"])
    claimed = await store.claim_due_deliveries(10, lease_seconds=30)
    assert [c.msg_id for c in claimed] == [msg["id"]]
    c = claimed[0]
    assert c.url == ep["url"] and c.headers == {"x-tenant": "7"} and c.payload == b'{"ok":true}'
    assert await store.claim_due_deliveries(10, lease_seconds=30) == []  # leased

    # A worker that died: its lease runs out and the delivery is claimable again.
    store.clock = lambda: utcnow() + timedelta(seconds=31)
    again = await store.claim_due_deliveries(10, lease_seconds=30)
    assert [d.delivery_id for d in again] == [c.delivery_id] and again[0].lease != c.lease
    # The stale claimer's result is kept as an attempt but does not move the delivery.
    await store.record_attempts([_result(c, 200)], RetrySchedule((1,)))
    assert (await _deliveries(store))[0]["status"] == MessageStatus.SENDING


async def test_concurrent_claims_never_share_a_delivery(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    for _ in range(4):
        await _endpoint(store, app["id"])
    for _ in range(10):
        await _message(store, app["id"])
    ids_: list[str] = []
    for _ in range(20):  # concurrent claimers skip an endpoint another one is claiming
        batches = await asyncio.gather(*(store.claim_due_deliveries(7, 30) for _ in range(8)))
        ids_ += [c.delivery_id for batch in batches for c in batch]
        if len(ids_) >= 40:
            break
    assert len(ids_) == 40 and len(set(ids_)) == 40


async def test_results_follow_the_retry_schedule(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    await _endpoint(store, app["id"])
    msg, _ = await _message(store, app["id"])
    schedule = RetrySchedule((10, 20))
    start = utcnow()
    store.clock = lambda: start

    (c1,) = await store.claim_due_deliveries(1, 30)
    await store.record_attempts([_result(c1, 500)], schedule)
    (d,) = await _deliveries(store)
    assert d["status"] == MessageStatus.PENDING and d["attempt_count"] == 1
    assert d["next_attempt_at"] == start + timedelta(seconds=10)

    store.clock = lambda: start + timedelta(seconds=10)
    (c2,) = await store.claim_due_deliveries(1, 30)
    await store.record_attempts([_result(c2, 0)], schedule)
    store.clock = lambda: start + timedelta(seconds=30)
    (c3,) = await store.claim_due_deliveries(1, 30)
    await store.record_attempts([_result(c3, 503)], schedule)
    (d,) = await _deliveries(store)
    assert d["status"] == MessageStatus.FAIL and d["next_attempt_at"] is None
    assert d["attempt_count"] == 3
    attempts = await store.list_attempts(app["id"], Page(descending=True), msg_id=msg["id"])
    assert [a["response_status_code"] for a in attempts.rows] == [503, 0, 500]

    # A manual resend is one more try, recorded as manual, that does not restart retries.
    await store.resend(app["id"], msg["id"], d["endpoint_id"])
    (c4,) = await store.claim_due_deliveries(1, 30)
    assert c4.trigger is TriggerType.MANUAL
    await store.record_attempts([_result(c4, 204)], schedule)
    (d,) = await _deliveries(store)
    assert d["status"] == MessageStatus.SUCCESS and d["trigger_type"] == TriggerType.SCHEDULED
    newest_page = Page(limit=1, descending=True)
    newest = (await store.list_attempts(app["id"], newest_page, msg_id=msg["id"])).rows[0]
    assert newest["trigger_type"] == TriggerType.MANUAL


async def test_disabling_an_endpoint_parks_its_queue(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    ep = await _endpoint(store, app["id"])
    await _message(store, app["id"])
    await store.update_endpoint(app["id"], ep["id"], {"disabled": True})
    assert await store.claim_due_deliveries(10, 30) == []
    await store.update_endpoint(app["id"], ep["id"], {"disabled": False})
    assert len(await store.claim_due_deliveries(10, 30)) == 1


async def test_deleting_an_endpoint_mid_flight_drops_its_attempt(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    ep = await _endpoint(store, app["id"])
    keep = await _endpoint(store, app["id"])
    await _message(store, app["id"])
    claims = await store.claim_due_deliveries(10, 30)
    await store.delete_endpoint(app["id"], ep["id"])
    await store.record_attempts([_result(c, 200) for c in claims], RetrySchedule(()))
    rows = (await store.list_attempts(app["id"], Page())).rows
    assert [r["endpoint_id"] for r in rows] == [keep["id"]]


async def test_message_filters(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    a, _ = await _message(store, app["id"], "purchase.approved", channels=["p1"], tags=["t1"])
    b, _ = await _message(store, app["id"], "purchase.refunded", channels=["p2"])

    async def ids_(**kw: object) -> list[str]:
        return [r["id"] for r in (await store.list_messages(app["id"], Page(), **kw)).rows]

    assert await ids_(event_types=["purchase.refunded"]) == [b["id"]]
    assert await ids_(channel="p1") == [a["id"]]
    assert await ids_(tag="t1") == [a["id"]]
    assert await ids_(after=b["created_at"] + timedelta(seconds=1)) == []
    assert set(await ids_(before=utcnow() + timedelta(seconds=1))) == {a["id"], b["id"]}


async def test_queue_health_sees_expired_leases_and_late_work(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    await _endpoint(store, app["id"])
    for _ in range(3):
        await _message(store, app["id"])
    start = utcnow()
    store.clock = lambda: start
    health = await store.queue_health(overdue_after=60)
    assert (health["due"], health["overdue"], health["stuck"]) == (3, 0, 0) and health["healthy"]

    await store.claim_due_deliveries(1, lease_seconds=30)  # then its worker dies
    store.clock = lambda: start + timedelta(seconds=120)
    health = await store.queue_health(overdue_after=60)
    assert health["stuck"] == 1 and health["overdue"] == 2 and not health["healthy"]
    assert health["oldest_due_seconds"] >= 119


async def test_endpoint_secrets_are_encrypted_at_rest(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    secret = generate_secret()
    ep = await store.create_endpoint(app["id"], {"url": "https://e.example", "secret": secret})
    rotated = generate_secret()
    await store.update_endpoint(app["id"], ep["id"], {"secret": rotated})
    # What a database dump holds: no trace of the key, in any encoding.
    async with store.engine.connect() as conn:
        raw = (await conn.execute(sa.select(schema.endpoints.c.secret))).scalar_one()
    key_b64 = rotated.removeprefix("whsec_")
    assert raw.startswith("enc:v1:") and key_b64 not in raw and rotated not in raw
    assert (await store.get_endpoint(app["id"], ep["id"]))["secret"] == rotated
    await _message(store, app["id"])
    (claim,) = await store.claim_due_deliveries(1, 30)
    assert claim.secrets == (decode_secret(rotated),)

    other = Store(store.engine, secret_box=SecretBox(b"w" * 32))  # the wrong master key
    with pytest.raises(SecretKeyError, match="POSTBACK_SECRET_KEY"):
        await other.get_endpoint(app["id"], ep["id"])


async def test_rate_limit_slots_are_shared_and_kept(store: Store, second_store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    slow = await _endpoint(store, app["id"], throttle_rate=5, event_types=["purchase.approved"])
    fast = await _endpoint(store, app["id"], event_types=["other"])
    for _ in range(10):
        await _message(store, app["id"])
    for _ in range(3):
        await _message(store, app["id"], "other")
    start = utcnow()
    for s in (store, second_store):
        s.clock = lambda: start
    # Two claimers (two worker processes) at the same instant: one slot between them.
    first = await store.claim_due_deliveries(100, 30)
    second = await second_store.claim_due_deliveries(100, 30)
    to_slow = [c for c in first + second if c.endpoint_id == slow["id"]]
    to_fast = [c for c in first + second if c.endpoint_id == fast["id"]]
    assert len(to_slow) == 1 and len(to_fast) == 3  # the limit holds nobody else up
    parked = sorted(d["next_attempt_at"] for d in await _deliveries(store) if d["rate_slot"])
    assert parked == [start + timedelta(seconds=0.2 * i) for i in range(1, 10)]
    # At +0.45 s the deliveries holding the 0.2 and 0.4 slots go, without new reservations.
    store.clock = lambda: start + timedelta(seconds=0.45)
    assert len(await store.claim_due_deliveries(100, 30)) == 2
    assert len(await store.claim_due_deliveries(100, 30)) == 0


async def test_payload_retention_drops_payloads_not_records(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    short, _ = await _message(store, app["id"], retention_seconds=3600)
    default, _ = await _message(store, app["id"])
    assert await store.expunge_expired_payloads() == 0
    store.clock = lambda: utcnow() + timedelta(hours=2)
    assert await store.expunge_expired_payloads() == 1
    assert (await store.get_message(app["id"], short["id"]))["payload"] is None
    assert (await store.get_message(app["id"], default["id"]))["payload"] == b'{"ok":true}'
    store.clock = lambda: utcnow() + timedelta(days=91)  # Svix's default: 90 days
    assert await store.expunge_expired_payloads() == 1
    assert await store.expunge_expired_payloads() == 0


async def test_endpoint_stats_count_by_status_within_the_window(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    ep = await _endpoint(store, app["id"])
    start = utcnow()
    store.clock = lambda: start - timedelta(days=2)
    old, _ = await _message(store, app["id"])  # outside a one-day window
    store.clock = lambda: start
    today, _ = await _message(store, app["id"])
    await _message(store, app["id"])  # stays in flight
    claims = {c.msg_id: c for c in await store.claim_due_deliveries(3, 30)}
    no_retries = RetrySchedule(())
    await store.record_attempts([_result(claims[today["id"]], 200)], no_retries)
    await store.record_attempts([_result(claims[old["id"]], 500)], no_retries)

    day = await store.endpoint_stats(app["id"], ep["id"], start - timedelta(days=1), None)
    assert day == {"success": 1, "pending": 0, "fail": 0, "sending": 1, "canceled": 0}
    before = await store.endpoint_stats(app["id"], ep["id"], None, start - timedelta(days=1))
    assert before == {"success": 0, "pending": 0, "fail": 1, "sending": 0, "canceled": 0}
    everything = await store.endpoint_stats(app["id"], ep["id"], None, None)
    assert sum(everything.values()) == 3


async def test_postgresql_pool_is_fixed_and_connections_are_reused(database_url: str) -> None:
    """Concurrency beyond the pool waits for a connection instead of opening (and then
    closing) extra ones: that churn cost POST /msg/ a third of its throughput."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite keeps one connection")
    store = Store.connect(database_url, pool_size=4)
    try:

        async def backend() -> int:
            async with store.engine.connect() as conn:
                pid = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
                await asyncio.sleep(0.01)
                return pid

        first = await asyncio.gather(*(backend() for _ in range(30)))
        second = await asyncio.gather(*(backend() for _ in range(30)))
    finally:
        await store.close()
    assert len(set(first)) <= 4 and set(second) <= set(first)


async def test_messages_accepted_together_share_a_batch_and_keep_their_own_outcome(
    store: Store,
) -> None:
    """Group commit (store/group_commit.py): concurrent messages are written in one
    transaction, yet each caller gets its own answer, and one message's failure is its own."""
    sizes: list[int] = []
    write = store._ingest._write

    async def counted(items: list[Any]) -> list[Any]:
        sizes.append(len(items))
        return await write(items)

    store._ingest._write = counted  # type: ignore[method-assign]
    lite = store
    app = await lite.create_app({"name": "a", "uid": "shop"})
    ep = await lite.create_endpoint(
        app["id"], {"url": "http://127.0.0.1:9/a", "secret": generate_secret()}
    )
    # A filter the store cannot run (written behind its back): routing a message to this
    # app raises, and only that message's caller may see it.
    broken = await lite.create_app({"name": "b"})
    bad = await lite.create_endpoint(
        broken["id"], {"url": "http://127.0.0.1:9/b", "secret": generate_secret()}
    )
    async with lite.engine.begin() as conn:
        await conn.execute(
            schema.endpoints.update()
            .where(schema.endpoints.c.id == bad["id"])
            .values(payload_filter={"x": {"$nope": 1}})
        )

    def msg(event_id: str | None = None) -> dict[str, Any]:
        return {"event_type": "e", "payload": b"{}", "event_id": event_id}

    calls = [lite.create_message("shop", msg(f"e{i}"), app_ref=True) for i in range(30)]
    calls += [lite.create_message("shop", msg("twice"), app_ref=True) for _ in range(2)]
    calls.append(lite.create_message("nobody", msg(), app_ref=True))
    calls.append(lite.create_message(broken["id"], msg(), app_ref=True))
    out = await asyncio.gather(*calls, return_exceptions=True)

    assert max(sizes) > 1  # they were grouped
    written = out[:30]
    assert all(created and row["app_id"] == app["id"] for row, created in written)
    first, second = out[30], out[31]
    assert sorted([first[1], second[1]]) == [False, True]  # one wrote it, one found it
    assert first[0]["id"] == second[0]["id"]
    assert isinstance(out[32], NotFound)
    assert isinstance(out[33], Exception) and not isinstance(out[33], NotFound)

    d, m = schema.deliveries.c, schema.messages.c
    async with lite.engine.connect() as conn:
        queued = await conn.scalar(
            sa.select(sa.func.count()).where(
                d.endpoint_id == ep["id"], d.status == MessageStatus.PENDING
            )
        )
        stray = await conn.scalar(sa.select(sa.func.count()).where(m.app_id == broken["id"]))
        seqs = list(await conn.scalars(sa.select(m.seq).order_by(m.seq)))
    assert queued == 31 and stray == 0  # the failed message left nothing behind
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gaps, no repeats


async def test_a_caller_that_goes_away_leaves_its_batch_alone(store: Store) -> None:
    """A request cancelled while its batch is being written (a client that disconnected)
    neither fails the batch nor unwrites its own message: that is written with the batch,
    as a commit whose answer never arrived, and its eventId makes a retry find it."""
    app = await store.create_app({"name": "shop"})
    await _endpoint(store, app["id"])
    calls = [
        asyncio.create_task(
            store.create_message(
                app["id"], {"event_type": "e", "payload": b"{}", "event_id": f"c{i}"}
            )
        )
        for i in range(6)
    ]
    await asyncio.sleep(0)  # every call is queued for the batch
    calls[2].cancel()
    out = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(out[2], asyncio.CancelledError)
    assert all(created for _, created in out[:2] + out[3:])  # type: ignore[misc]
    again, created = await store.create_message(
        app["id"], {"event_type": "e", "payload": b"{}", "event_id": "c2"}
    )
    assert not created and again["event_id"] == "c2"
    assert len(await _deliveries(store)) == 6
