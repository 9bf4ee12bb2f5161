"""The worker loop against real databases and loopback receivers: wakeups, sharing the
queue, graceful shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from postback.config import Settings
from postback.delivery.worker import Worker
from postback.domain import AttemptResult, ClaimedDelivery, MessageStatus, RetrySchedule, utcnow
from postback.signing import generate_secret
from postback.store import schema
from postback.store.store import Store
from tests.support.polling import eventually_async
from tests.support.receivers import Receiver, hang, ok
from tests.support.server import SECRET_BOX


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _settings(database_url: str, **kw: object) -> Settings:
    base = {
        "database_url": database_url,
        "retry_schedule": (0.1,),
        "poll_interval": 5.0,
        "allow_private_networks": True,
    }
    return Settings(**(base | kw))


async def _app_with_endpoint(store: Store, url: str) -> str:
    app = await store.create_app({"name": "shop"})
    await store.create_endpoint(app["id"], {"url": url, "secret": generate_secret()})
    return app["id"]


async def _send(store: Store, app_id: str, n: int = 1) -> list[str]:
    made = []
    for i in range(n):
        row, _ = await store.create_message(
            app_id, {"event_type": "purchase.approved", "payload": b'{"n":%d}' % i}
        )
        made.append(row["id"])
    return made


@pytest.fixture
async def second_store(database_url: str, store: Store) -> AsyncIterator[Store]:
    """Another process's view of the same database (its own engine and pool)."""
    other = Store.connect(database_url, secret_box=SECRET_BOX)
    yield other
    await other.close()


async def test_new_work_wakes_the_worker_long_before_the_poll(
    database_url: str, store: Store, second_store: Store, receiver: Receiver
) -> None:
    url = receiver.route("/hook", ok())
    app_id = await _app_with_endpoint(store, url)
    worker = Worker(store, _settings(database_url))
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.3)  # idle: waiting on a 5 s poll
    # On PostgreSQL another process queues the work (NOTIFY reaches us through LISTEN);
    # on SQLite the API shares the worker's process and its in-process event.
    producer = second_store if store.backend.name == "postgresql" else store
    started = time.monotonic()
    await _send(producer, app_id)
    await eventually_async(lambda: len(receiver.received("/hook")) == 1)
    latency = time.monotonic() - started
    worker.stop()
    await running
    assert latency < 1.0, latency


async def test_results_wake_the_claim_only_where_they_can_free_work(
    database_url: str, store: Store, receiver: Receiver
) -> None:
    """A fan-out's successes make no new claim (each would walk all its endpoints), while
    an endpoint held at its cap is claimed from again as soon as a result frees room, not
    at the next poll (30 s here)."""
    app = await store.create_app({"name": "shop"})
    for i in range(30):  # their answers come back over 0.6 s, in many recorded batches
        url = receiver.route(f"/fan{i}", hang(0.02 * i))
        await store.create_endpoint(app["id"], {"url": url, "secret": generate_secret()})
    claims = 0
    real_claim = store.claim

    async def counted(*args: Any, **kw: Any) -> Any:
        nonlocal claims
        claims += 1
        return await real_claim(*args, **kw)

    store.claim = counted  # type: ignore[method-assign]
    worker = Worker(store, _settings(database_url, poll_interval=30.0))
    running = asyncio.create_task(worker.run())
    try:
        # Started and idle: its first claims (and the wakeup listening starts with) are
        # over once the count stops moving.
        before = -1
        while claims != before:
            before = claims
            await asyncio.sleep(0.5)
        await _send(store, app["id"])
        fanned = [f"/fan{i}" for i in range(30)]
        await eventually_async(lambda: all(receiver.received(f) for f in fanned))
        await asyncio.sleep(0.3)  # every result recorded
        # The claim that took the fan-out, and perhaps one that found the rest in flight.
        assert claims - before <= 3, claims - before
        # Twelve messages for an endpoint that may have two in flight, each answer taking
        # 0.2 s: all are queued before the second pair could go, so each later pair is
        # claimed because the last pair's results were recorded.
        capped = await store.create_endpoint(
            app["id"],
            {
                "url": receiver.route("/capped", hang(0.2)),
                "secret": generate_secret(),
                "max_in_flight": 2,
            },
        )
        for i in range(12):
            await store.create_message(
                app["id"],
                {"event_type": "purchase.approved", "payload": b'{"n":%d}' % i},
                only_endpoint=capped["id"],
            )
        await eventually_async(lambda: len(receiver.received("/capped")) == 12, timeout=20)
    finally:
        worker.stop()
        await running


async def test_two_workers_share_the_queue_without_duplicates(
    database_url: str, store: Store, second_store: Store, receiver: Receiver
) -> None:
    # Each worker holds at most 20 claims and answers take 20 ms: one worker cannot keep
    # up alone, so the other's next poll finds work too, however busy the machine.
    url = receiver.route("/hook", hang(0.02))
    app_id = await _app_with_endpoint(store, url)
    sent = await _send(store, app_id, 120)
    settings = _settings(
        database_url, worker_batch_size=10, worker_concurrency=10, poll_interval=0.05
    )
    workers = [Worker(store, settings), Worker(second_store, settings)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    await eventually_async(lambda: len(receiver.received("/hook")) >= 120)
    await eventually_async(lambda: sum(w.delivered for w in workers) >= 120)
    await asyncio.sleep(0.2)
    for w in workers:
        w.stop()
    await asyncio.gather(*tasks)
    got = [r.headers["webhook-id"] for r in receiver.received("/hook")]
    assert sorted(got) == sorted(sent)  # every message once, none twice
    if store.backend.name == "postgresql":
        assert all(w.delivered > 0 for w in workers)  # SKIP LOCKED let both work


async def test_graceful_stop_finishes_in_flight_attempts(
    database_url: str, store: Store, receiver: Receiver
) -> None:
    url = receiver.route("/slow", hang(0.5))
    app_id = await _app_with_endpoint(store, url)
    await _send(store, app_id, 3)
    worker = Worker(store, _settings(database_url, request_timeout=5), shutdown_grace=3)
    running = asyncio.create_task(worker.run())
    await eventually_async(lambda: len(receiver.received("/slow")) == 3)
    worker.stop()
    await asyncio.wait_for(running, 5)
    async with store.engine.connect() as conn:
        statuses = (await conn.execute(sa.select(schema.deliveries.c.status))).scalars().all()
        attempts = await conn.scalar(sa.select(sa.func.count()).select_from(schema.attempts))
    assert statuses == [MessageStatus.SUCCESS] * 3 and attempts == 3


async def test_stop_hands_back_claims_no_sender_has_started(
    database_url: str, store: Store, receiver: Receiver
) -> None:
    """Claims taken ahead of the senders are not started once the worker is stopping: the
    attempts in flight finish, the rest go back to the queue at once."""
    url = receiver.route("/slow", hang(0.3))
    app_id = await _app_with_endpoint(store, url)
    await _send(store, app_id, 4)
    settings = _settings(database_url, request_timeout=5, worker_concurrency=2, worker_batch_size=2)
    worker = Worker(store, settings, shutdown_grace=3)
    running = asyncio.create_task(worker.run())
    await eventually_async(
        lambda: len(receiver.received("/slow")) == 2 and worker._claims.qsize() == 2
    )
    worker.stop()
    await asyncio.wait_for(running, 5)
    assert len(receiver.received("/slow")) == 2  # the two claimed ahead were not sent
    assert len(await store.claim_due_deliveries(10, 30)) == 2  # and are due again


async def test_stop_hands_unfinished_claims_back(
    database_url: str, store: Store, receiver: Receiver
) -> None:
    url = receiver.route("/stuck", hang(30))
    app_id = await _app_with_endpoint(store, url)
    await _send(store, app_id, 2)
    worker = Worker(store, _settings(database_url, request_timeout=60), shutdown_grace=0.2)
    running = asyncio.create_task(worker.run())
    await eventually_async(lambda: len(receiver.received("/stuck")) == 2)
    started = time.monotonic()
    worker.stop()
    await asyncio.wait_for(running, 5)
    assert time.monotonic() - started < 3  # bounded by the grace period, not the timeout
    # Released, not left leased for a minute: the next worker can take them at once.
    claimed = await store.claim_due_deliveries(10, 30)
    assert len(claimed) == 2


async def test_a_slow_recorder_holds_claims_back_instead_of_letting_leases_expire(
    database_url: str, store: Store, receiver: Receiver
) -> None:
    """Sending can outrun recording (a busy database). Claims stay bounded by the worker's
    concurrency (plus one batch claimed ahead) until their attempts are written: results
    must not pile up in memory while their leases run out and other workers send them
    again."""
    url = receiver.route("/hook", ok())
    app_id = await _app_with_endpoint(store, url)
    await _send(store, app_id, 30)
    worker = Worker(store, _settings(database_url, worker_concurrency=4, worker_batch_size=4))
    record = store.record_attempts
    held: list[int] = []

    async def slow_record(*args: object, **kwargs: object) -> None:
        held.append(await _claimed_and_unrecorded(store))
        await asyncio.sleep(0.05)
        await record(*args, **kwargs)  # type: ignore[arg-type]

    store.record_attempts = slow_record  # type: ignore[method-assign]
    running = asyncio.create_task(worker.run())
    await eventually_async(lambda: worker.delivered == 30, timeout=30)
    worker.stop()
    await running
    got = receiver.received("/hook")
    assert len(got) == 30 == len({r.headers["webhook-id"] for r in got})  # each once
    assert held and max(held) <= 4 + 4, held


async def _claimed_and_unrecorded(store: Store) -> int:
    d = schema.deliveries.c
    async with store.engine.connect() as conn:
        stmt = sa.select(sa.func.count()).where(d.status == MessageStatus.SENDING)
        return (await conn.execute(stmt)).scalar_one()


async def test_recorders_on_shared_endpoints_do_not_deadlock(
    database_url: str, store: Store, second_store: Store
) -> None:
    """Two workers recording batches for the same endpoints at the same moment. Inserting an
    attempt takes a KEY SHARE lock on its endpoint; if the health update then asked for FOR
    UPDATE, each recorder would wait for the other's KEY SHARE: a deadlock PostgreSQL breaks
    by killing one (seen in the 10k scale test)."""
    if store.backend.name != "postgresql":
        pytest.skip("row locks and deadlock detection are PostgreSQL's")
    app = await store.create_app({"name": "shop"})
    for _ in range(3):
        await store.create_endpoint(
            app["id"], {"url": "http://127.0.0.1:9/x", "secret": generate_secret()}
        )
    before = await _deadlocks(store)
    schedule = RetrySchedule((60,))
    for _ in range(8):
        await _send(store, app["id"], 10)
        first = await store.claim_due_deliveries(15, 60)
        second = await second_store.claim_due_deliveries(15, 60)
        assert {c.endpoint_id for c in first} == {c.endpoint_id for c in second}
        await asyncio.gather(
            store.record_attempts([_fail(c) for c in first], schedule),
            second_store.record_attempts([_fail(c) for c in second], schedule),
        )
    await asyncio.sleep(1.5)  # PostgreSQL publishes a backend's statistics within a second
    assert await _deadlocks(store) == before


def _fail(claim: ClaimedDelivery) -> AttemptResult:
    return AttemptResult(delivery=claim, at=utcnow(), status_code=500, response="", duration_ms=1)


async def _deadlocks(store: Store) -> int:
    async with store.engine.connect() as conn:
        await conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        stmt = sa.text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return (await conn.execute(stmt)).scalar_one()
