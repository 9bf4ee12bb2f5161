"""Ordered delivery in the store (docs/architecture.md, "Ordered delivery"), on SQLite and
PostgreSQL: an ordered endpoint's claim takes only each ordering key's head, a head that
is retrying, parked or in flight holds its key back, a finished one (success, failed for
good) releases the next, different keys go out side by side, and unordered endpoints
claim as before; a head may be listed, retried now and skipped, but not while in flight."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from postback.domain import AttemptResult, ClaimedDelivery, MessageStatus, RetrySchedule, utcnow
from postback.signing import generate_secret
from postback.store import schema as t
from postback.store.errors import Conflict, NotFound
from postback.store.store import Store

NOW = utcnow().replace(microsecond=0)
SCHEDULE = RetrySchedule((5, 5), jitter=0)  # three attempts, 5 s apart


async def _endpoint(store: Store, *, ordered: bool = True) -> tuple[str, str]:
    app = await store.create_app({"name": "Billing"})
    ep = await store.create_endpoint(
        app["id"],
        {"url": "http://127.0.0.1:9/hook", "secret": generate_secret(), "ordered": ordered},
    )
    return app["id"], ep["id"]


async def _send(store: Store, app_id: str, name: str, key: str | None = None) -> str:
    values = {"event_type": "invoice.paid", "payload": f'{{"n":"{name}"}}'.encode()}
    if key is not None:
        values["ordering_key"] = key
    msg, _ = await store.create_message(app_id, values)
    return msg["id"]


async def _claim(store: Store) -> list[ClaimedDelivery]:
    return sorted(await store.claim_due_deliveries(50, 30), key=lambda c: c.msg_id)


async def _record(store: Store, claims: list[ClaimedDelivery], code: int) -> None:
    await store.record_attempts(
        [AttemptResult(c, store.clock(), code, "", 1) for c in claims], SCHEDULE
    )


async def test_only_each_keys_head_is_claimed_and_a_success_releases_the_next(
    store: Store, clock: list[datetime]
) -> None:
    app_id, _ = await _endpoint(store)
    a1, a2, b1, a3, b2 = [
        await _send(store, app_id, n, k)
        for n, k in (("a1", "A"), ("a2", "A"), ("b1", "B"), ("a3", "A"), ("b2", "B"))
    ]
    first = await _claim(store)
    assert [c.msg_id for c in first] == sorted([a1, b1])  # two keys side by side
    assert await _claim(store) == []  # both heads in flight: nothing else may go
    await _record(store, [c for c in first if c.msg_id == a1], 200)
    (nxt,) = await _claim(store)
    assert nxt.msg_id == a2  # B's head is still out
    await _record(store, [nxt, *[c for c in first if c.msg_id == b1]], 200)
    assert [c.msg_id for c in await _claim(store)] == sorted([a3, b2])


async def test_a_retrying_head_holds_its_key_and_failing_for_good_releases_it(
    store: Store, clock: list[datetime]
) -> None:
    app_id, _ = await _endpoint(store)
    first, second = await _send(store, app_id, "1"), await _send(store, app_id, "2")
    other = await _send(store, app_id, "x", "other")
    claims = await _claim(store)
    assert {c.msg_id for c in claims} == {first, other}  # no key: one shared key
    head = next(c for c in claims if c.msg_id == first)
    await _record(store, [head], 500)
    clock[0] = NOW + timedelta(seconds=1)
    assert await _claim(store) == []  # the head retries in 5 s: the second one waits
    for attempt in (2, 3):
        clock[0] += timedelta(seconds=5)
        (again,) = await _claim(store)
        assert (again.msg_id, again.attempt_count) == (first, attempt - 1)
        await _record(store, [again], 500)
    (released,) = await _claim(store)  # the head failed for good: the next one goes
    assert released.msg_id == second


async def test_a_lapsed_head_is_claimed_again_before_the_next(
    store: Store, clock: list[datetime]
) -> None:
    app_id, _ = await _endpoint(store)
    first = await _send(store, app_id, "1", "k")
    await _send(store, app_id, "2", "k")
    assert [c.msg_id for c in await _claim(store)] == [first]
    clock[0] = NOW + timedelta(seconds=31)  # the claim's lease (30 s) ran out: its worker died
    assert [c.msg_id for c in await _claim(store)] == [first]


async def test_unordered_endpoints_claim_every_due_delivery(
    store: Store, clock: list[datetime]
) -> None:
    app_id, _ = await _endpoint(store, ordered=False)
    sent = {await _send(store, app_id, str(n), "same") for n in range(4)}
    assert {c.msg_id for c in await _claim(store)} == sent
    d = t.deliveries.c
    async with store.engine.connect() as conn:
        keys = set(await conn.scalars(sa.select(d.ordering_key)))
    assert keys == {None}  # not in the ordering index at all


async def test_turning_ordering_on_keys_the_queued_deliveries_in_message_order(
    store: Store, clock: list[datetime]
) -> None:
    app_id, ep_id = await _endpoint(store, ordered=False)
    first = await _send(store, app_id, "1", "k")
    await _send(store, app_id, "2", "k")
    updated = await store.update_endpoint(app_id, ep_id, {"ordered": True})
    assert updated["ordered"] is True
    assert [c.msg_id for c in await _claim(store)] == [first]
    await store.update_endpoint(app_id, ep_id, {"ordered": False})
    assert len(await _claim(store)) == 1  # the second, now unordered, goes beside it


async def test_a_resent_message_joins_the_back_of_its_key(
    store: Store, clock: list[datetime]
) -> None:
    app_id, ep_id = await _endpoint(store)
    old = await _send(store, app_id, "old", "k")
    (head,) = await _claim(store)
    await _record(store, [head], 200)
    newer = await _send(store, app_id, "newer", "k")
    await store.resend(app_id, old, ep_id)
    (nxt,) = await _claim(store)
    assert nxt.msg_id == newer  # the resend does not overtake it
    await _record(store, [nxt], 200)
    (last,) = await _claim(store)
    assert last.msg_id == old


async def test_a_head_in_flight_is_neither_skipped_nor_retried_and_a_skip_is_recorded(
    store: Store, clock: list[datetime]
) -> None:
    app_id, ep_id = await _endpoint(store)
    first = await _send(store, app_id, "1", "k")
    second = await _send(store, app_id, "2", "k")
    (head,) = await _claim(store)
    for act in (
        store.skip_head(app_id, ep_id, "k", "operator"),
        store.retry_head(app_id, ep_id, "k"),
    ):
        with pytest.raises(Conflict):
            await act
    await _record(store, [head], 500)  # retrying in 5 s: now it may be acted on
    (listed,) = await store.ordering_heads(app_id, ep_id)
    assert (listed["msg_id"], listed["attempt_count"]) == (first, 1)
    retried = await store.retry_head(app_id, ep_id, "k")
    assert retried["next_attempt_at"] == NOW
    skipped = await store.skip_head(app_id, ep_id, "k", "operator token tok_1")
    assert skipped["note"] == f"skipped by operator token tok_1 at {NOW.isoformat()}"
    (nxt,) = await _claim(store)
    assert nxt.msg_id == second  # the skipped head released its key
    d = t.deliveries.c
    async with store.engine.connect() as conn:
        status = await conn.scalar(sa.select(d.status).where(d.msg_id == first))
    assert status == MessageStatus.CANCELED
    with pytest.raises(NotFound):
        await store.skip_head(app_id, ep_id, "nothing-here", "operator")
    await store.update_endpoint(app_id, ep_id, {"disabled": True})
    with pytest.raises(Conflict):
        await store.retry_head(app_id, ep_id, "k")
