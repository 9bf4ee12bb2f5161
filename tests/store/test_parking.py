"""Parked deliveries (store/schema.py, deliveries; domain.PARK_AHEAD): due far ahead, they
wait in wake_at, out of the index claims walk, and workers move them back shortly before
they are due. Claims, listings, counts, pausing and resends treat them as scheduled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from postback.domain import PARK_AHEAD, AttemptResult, MessageStatus, RetrySchedule, utcnow
from postback.signing import generate_secret
from postback.store import schema as t
from postback.store.pages import Page
from postback.store.store import Store
from tests.support.server import SECRET_BOX

NOW = utcnow().replace(microsecond=0)


async def _setup(store: Store) -> tuple[str, str]:
    app = await store.create_app({"name": "Billing"})
    ep = await store.create_endpoint(
        app["id"], {"url": "http://127.0.0.1:9/hook", "secret": generate_secret()}
    )
    return app["id"], ep["id"]


async def _queue_columns(store: Store) -> list[tuple[int, datetime | None, datetime | None]]:
    d = t.deliveries.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(d.status, d.next_attempt_at, d.wake_at))
        return [tuple(r) for r in rows]


async def test_a_message_scheduled_for_tomorrow_is_parked_then_woken(
    store: Store, clock: list[datetime]
) -> None:
    app_id, ep_id = await _setup(store)
    tomorrow = NOW + timedelta(days=1)
    msg, _ = await store.create_message(
        app_id, {"event_type": "invoice.due", "payload": b"{}", "deliver_at": tomorrow}
    )
    assert await _queue_columns(store) == [(MessageStatus.PENDING, None, tomorrow)]
    assert await store.claim_due_deliveries(10, 30) == []
    health = await store.queue_health(overdue_after=60)
    assert (health["scheduled"], health["paused"], health["due"]) == (1, 0, 0)
    assert (await store.queue_gauges())["scheduled"] == 1
    (dest,) = (await store.list_destinations(app_id, msg["id"], Page(limit=10))).rows
    assert dest["next_attempt_at"] == tomorrow  # listings show when it goes out

    assert await store.wake_parked() == 0  # not yet within PARK_AHEAD
    clock[0] = tomorrow - PARK_AHEAD + timedelta(seconds=1)
    assert await store.wake_parked() == 1
    assert await store.wake_parked() == 0  # moved once
    assert await _queue_columns(store) == [(MessageStatus.PENDING, tomorrow, None)]
    assert await store.claim_due_deliveries(10, 30) == []  # in the queue, not due yet
    clock[0] = tomorrow
    (claim,) = await store.claim_due_deliveries(10, 30)
    assert claim.msg_id == msg["id"] and claim.endpoint_id == ep_id


async def test_a_late_retry_is_parked_an_early_one_is_not(
    store: Store, clock: list[datetime]
) -> None:
    app_id, _ = await _setup(store)
    await store.create_message(app_id, {"event_type": "a", "payload": b"{}"})
    schedule = RetrySchedule((5, 3600), jitter=0)
    (claim,) = await store.claim_due_deliveries(10, 30)
    await store.record_attempts([AttemptResult(claim, NOW, 500, "no", 1)], schedule)
    soon = NOW + timedelta(seconds=5)
    assert await _queue_columns(store) == [(MessageStatus.PENDING, soon, None)]
    clock[0] = soon
    (claim,) = await store.claim_due_deliveries(10, 30)
    await store.record_attempts([AttemptResult(claim, soon, 503, "no", 1)], schedule)
    later = soon + timedelta(hours=1)
    assert await _queue_columns(store) == [(MessageStatus.PENDING, None, later)]
    clock[0] = later - timedelta(seconds=30)
    assert await store.wake_parked() == 1
    clock[0] = later
    (claim,) = await store.claim_due_deliveries(10, 30)
    assert claim.attempt_count == 2  # the schedule went on where it was


async def test_disabling_pauses_parked_deliveries_and_enabling_makes_them_due(
    store: Store, clock: list[datetime]
) -> None:
    app_id, ep_id = await _setup(store)
    later = NOW + timedelta(hours=5)
    await store.create_message(app_id, {"event_type": "a", "payload": b"{}", "deliver_at": later})
    await store.update_endpoint(app_id, ep_id, {"disabled": True})
    assert await _queue_columns(store) == [(MessageStatus.PENDING, None, None)]
    health = await store.queue_health(overdue_after=60)
    assert (health["scheduled"], health["paused"]) == (0, 1)
    clock[0] = later
    assert await store.wake_parked() == 0  # nothing parked any more: it is paused
    await store.update_endpoint(app_id, ep_id, {"disabled": False})
    assert await _queue_columns(store) == [(MessageStatus.PENDING, later, None)]
    assert len(await store.claim_due_deliveries(10, 30)) == 1


async def test_a_resend_of_a_parked_delivery_goes_now(store: Store, clock: list[datetime]) -> None:
    app_id, ep_id = await _setup(store)
    later = NOW + timedelta(hours=5)
    msg, _ = await store.create_message(
        app_id, {"event_type": "a", "payload": b"{}", "deliver_at": later}
    )
    await store.resend(app_id, msg["id"], ep_id)
    assert await _queue_columns(store) == [(MessageStatus.PENDING, NOW, None)]
    assert len(await store.claim_due_deliveries(10, 30)) == 1
    assert await store.wake_parked() == 0


@pytest.fixture
async def second_store(database_url: str, store: Store) -> AsyncIterator[Store]:
    other = Store.connect(database_url, secret_box=SECRET_BOX)
    yield other
    await other.close()


async def test_workers_waking_at_once_move_each_delivery_once(
    store: Store, second_store: Store, clock: list[datetime]
) -> None:
    app_id, _ = await _setup(store)
    later = NOW + timedelta(hours=2)
    for n in range(40):
        await store.create_message(
            app_id,
            {"event_type": "a", "payload": b"{}", "deliver_at": later + timedelta(seconds=n)},
        )
    second_store.clock = store.clock
    clock[0] = later
    moved = await asyncio.gather(
        store.wake_parked(limit=7), second_store.wake_parked(limit=7), store.wake_parked()
    )
    rest = await second_store.wake_parked()
    assert sum(moved) + rest == 40
    rows = await _queue_columns(store)
    assert all(wake is None and due is not None for _, due, wake in rows)
    assert sorted(due for _, due, _ in rows) == [later + timedelta(seconds=n) for n in range(40)]
