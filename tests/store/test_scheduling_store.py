"""The scheduler in the store, on SQLite and PostgreSQL: fair claims, per-endpoint caps
over several claimers, the circuit breaker's shared state, Retry-After pauses,
application rate limits, and worker liveness."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from postback.delivery.scheduler import SchedulerPolicy
from postback.domain import AttemptResult, ClaimedDelivery, MessageStatus, RetrySchedule, utcnow
from postback.signing import generate_secret
from postback.store import schema as t
from postback.store.operational import OPERATIONAL_APP_ID
from postback.store.store import Store
from tests.support.server import SECRET_BOX

POLICY = SchedulerPolicy(max_in_flight=5, failure_threshold=3, cooldown=30, max_cooldown=600)
SCHEDULE = RetrySchedule((1.0,) * 10)


@pytest.fixture
async def second_store(database_url: str, store: Store) -> AsyncIterator[Store]:
    other = Store.connect(database_url, secret_box=SECRET_BOX)
    yield other
    await other.close()


async def _app_endpoint(store: Store, name: str, **values: object) -> tuple[str, str]:
    app = await store.create_app({"name": name})
    ep = await store.create_endpoint(
        app["id"], {"url": "http://127.0.0.1:9/h", "secret": generate_secret(), **values}
    )
    return app["id"], ep["id"]


async def _queue(store: Store, app_id: str, count: int) -> None:
    for _ in range(count):
        await store.create_message(app_id, {"event_type": "a", "payload": b"{}"})


def _result(claim: ClaimedDelivery, code: int, **kw: object) -> AttemptResult:
    return AttemptResult(claim, utcnow(), code, "", 2, **kw)  # type: ignore[arg-type]


async def _endpoint_row(store: Store, ep_id: str) -> dict:
    async with store.engine.connect() as conn:
        row = (await conn.execute(sa.select(t.endpoints).where(t.endpoints.c.id == ep_id))).one()
        return dict(row._mapping)


async def _operational_types(store: Store) -> list[str]:
    m = t.messages.c
    async with store.engine.connect() as conn:
        stmt = sa.select(m.event_type).where(m.app_id == OPERATIONAL_APP_ID).order_by(m.id)
        return list(await conn.scalars(stmt))


async def test_a_backlog_does_not_hide_another_endpoint(store: Store) -> None:
    big_app, big = await _app_endpoint(store, "big")
    await _queue(store, big_app, 300)  # older than the other's message
    small_app, small = await _app_endpoint(store, "small")
    await _queue(store, small_app, 1)
    claimed = await store.claim_due_deliveries(20, 30, policy=POLICY)
    per_endpoint = Counter(c.endpoint_id for c in claimed)
    assert per_endpoint == {big: 5, small: 1}  # the backlog is held to its cap of 5
    # While the backlog's five are in flight, nothing more of it is claimed ...
    assert await store.claim_due_deliveries(20, 30, policy=POLICY) == []
    # ... and one recorded attempt makes room for exactly one more.
    await store.record_attempts([_result(claimed[0], 200)], SCHEDULE, policy=POLICY)
    again = await store.claim_due_deliveries(20, 30, policy=POLICY)
    assert [c.endpoint_id for c in again] == [big]


async def test_an_endpoint_cap_overrides_the_default(store: Store) -> None:
    app_id, _ = await _app_endpoint(store, "shop", max_in_flight=2)
    await _queue(store, app_id, 10)
    assert len(await store.claim_due_deliveries(50, 30, policy=POLICY)) == 2


async def test_the_cap_holds_over_concurrent_claimers(store: Store, second_store: Store) -> None:
    apps = [await _app_endpoint(store, f"shop{i}") for i in range(3)]
    for app_id, _ in apps:
        await _queue(store, app_id, 30)
    claimers = [store, second_store] * 4
    batches = await asyncio.gather(
        *(s.claim_due_deliveries(7, 30, policy=POLICY) for s in claimers)
    )
    batches += await asyncio.gather(
        *(s.claim_due_deliveries(7, 30, policy=POLICY) for s in claimers)
    )
    claimed = [c for batch in batches for c in batch]
    assert len({c.delivery_id for c in claimed}) == len(claimed)
    per_endpoint = Counter(c.endpoint_id for c in claimed)
    assert set(per_endpoint.values()) == {5}, per_endpoint  # never above the cap, all got it


async def test_the_circuit_opens_probes_and_closes(store: Store, second_store: Store) -> None:
    app_id, ep_id = await _app_endpoint(store, "shop")
    await _queue(store, app_id, 12)
    now = utcnow()
    first = await store.claim_due_deliveries(10, 30, policy=POLICY)
    assert len(first) == 5
    # Three failures in a row, recorded by two workers: the circuit opens once.
    await store.record_attempts([_result(first[0], 503)], SCHEDULE, policy=POLICY)
    await second_store.record_attempts([_result(first[1], 0)], SCHEDULE, policy=POLICY)
    await store.record_attempts(
        [_result(first[2], 500), _result(first[3], 502)], SCHEDULE, policy=POLICY
    )
    ep = await _endpoint_row(store, ep_id)
    assert ep["circuit_state"] == 1 and ep["circuit_failures"] == 4
    probe_at = ep["circuit_probe_at"]
    assert timedelta(seconds=29) < probe_at - now < timedelta(seconds=40)
    assert (await _operational_types(store)).count("endpoint.circuit.opened") == 1
    # The last attempt from before it opened comes back: its slot frees, nothing is sent.
    await store.record_attempts([_result(first[4], 500)], SCHEDULE, policy=POLICY)
    for s in (store, second_store):
        s.clock = lambda: utcnow() + timedelta(seconds=10)
    assert await store.claim_due_deliveries(10, 30, policy=POLICY) == []
    # Waiting did not burn the deliveries' schedules: none was attempted again.
    d = t.deliveries.c
    async with store.engine.connect() as conn:
        counts = sorted(
            await conn.scalars(sa.select(d.attempt_count).where(d.endpoint_id == ep_id))
        )
    assert counts == [0] * 7 + [1] * 5
    # After the cool-down: one probe, over all workers, and the circuit is half-open.
    for s in (store, second_store):
        s.clock = lambda: utcnow() + timedelta(seconds=45)
    probes = await asyncio.gather(
        store.claim_due_deliveries(10, 30, policy=POLICY),
        second_store.claim_due_deliveries(10, 30, policy=POLICY),
    )
    (probe,) = [c for batch in probes for c in batch]
    assert (await _endpoint_row(store, ep_id))["circuit_state"] == 2
    assert await store.claim_due_deliveries(10, 30, policy=POLICY) == []
    # It fails: open again, with twice the cool-down.
    await store.record_attempts([_result(probe, 503)], SCHEDULE, policy=POLICY)
    ep = await _endpoint_row(store, ep_id)
    assert ep["circuit_state"] == 1 and ep["circuit_opens"] == 2
    assert timedelta(seconds=59) < ep["circuit_probe_at"] - (utcnow() + timedelta(seconds=45))
    # The next probe succeeds (through the plain-success path): closed, the backlog drains.
    for s in (store, second_store):
        s.clock = lambda: utcnow() + timedelta(seconds=200)
    (probe,) = await store.claim_due_deliveries(10, 30, policy=POLICY)
    await store.record_attempts([_result(probe, 200)], SCHEDULE, policy=POLICY)
    ep = await _endpoint_row(store, ep_id)
    assert ep["circuit_state"] == 0 and ep["circuit_failures"] == 0 and ep["circuit_opens"] == 0
    assert (await _operational_types(store))[-1] == "endpoint.circuit.closed"
    assert len(await store.claim_due_deliveries(10, 30, policy=POLICY)) == 5


async def test_retry_after_pauses_the_endpoint(store: Store) -> None:
    app_id, ep_id = await _app_endpoint(store, "shop")
    await _queue(store, app_id, 3)
    first = await store.claim_due_deliveries(1, 30, policy=POLICY)
    await store.record_attempts([_result(first[0], 429, retry_after=60.0)], SCHEDULE, policy=POLICY)
    ep = await _endpoint_row(store, ep_id)
    assert ep["paused_until"] is not None and ep["circuit_state"] == 0
    batch = await store.claim(10, 30, policy=POLICY)
    assert batch.claims == [] and batch.next_wake is not None
    assert timedelta(seconds=55) < batch.next_wake - utcnow() <= timedelta(seconds=61)
    store.clock = lambda: utcnow() + timedelta(seconds=61)
    assert len(await store.claim_due_deliveries(10, 30, policy=POLICY)) == 3


async def test_an_application_rate_limit_spans_its_endpoints(store: Store) -> None:
    app = await store.create_app({"name": "shop", "throttle_rate": 2})
    for _ in range(3):
        await store.create_endpoint(
            app["id"], {"url": "http://127.0.0.1:9/h", "secret": generate_secret()}
        )
    await _queue(store, app["id"], 2)  # 6 deliveries over 3 endpoints, 2 per second
    now_claimed = await store.claim_due_deliveries(10, 30, policy=POLICY)
    assert len(now_claimed) == 1  # the others wait for their slots, 0.5 s apart
    d = t.deliveries.c
    async with store.engine.connect() as conn:
        slots = sorted(
            await conn.scalars(
                sa.select(d.next_attempt_at).where(
                    d.status == MessageStatus.PENDING, d.rate_slot.is_(True)
                )
            )
        )
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(slots)]
    assert len(slots) == 5 and all(abs(g - 0.5) < 0.01 for g in gaps)


async def test_a_dead_workers_claims_are_handed_on(store: Store, second_store: Store) -> None:
    app_id, _ = await _app_endpoint(store, "shop")
    await _queue(store, app_id, 3)
    await store.heartbeat("deadbeef0001", "h", 1, 60, 30)
    claimed = await store.claim_due_deliveries(10, 60, policy=POLICY, worker="deadbeef0001")
    assert len(claimed) == 3
    assert await second_store.claim_due_deliveries(10, 60, policy=POLICY, worker="live") == []
    # The live one beats; the other said nothing for longer than dead_after.
    await asyncio.sleep(0.6)
    handed = await second_store.heartbeat("livebeef0002", "h", 2, 60, 0.5)
    assert handed == 3
    again = await second_store.claim_due_deliveries(10, 60, policy=POLICY, worker="livebeef0002")
    assert sorted(c.delivery_id for c in again) == sorted(c.delivery_id for c in claimed)
    assert [w["id"] for w in await store.live_workers()] == ["livebeef0002"]


async def test_a_live_worker_keeps_its_claims(store: Store, second_store: Store) -> None:
    app_id, _ = await _app_endpoint(store, "shop")
    await _queue(store, app_id, 2)
    claimed = await store.claim_due_deliveries(10, 2, policy=POLICY, worker="aaaabbbbcccc")
    for _ in range(4):  # 4 s: twice the lease, kept alive by the beats
        await store.heartbeat("aaaabbbbcccc", "h", 1, 2, 30)
        await second_store.heartbeat("ddddeeeeffff", "h", 2, 2, 30)
        assert await second_store.claim_due_deliveries(10, 2, policy=POLICY) == []
        await asyncio.sleep(1)
    await store.record_attempts([_result(c, 200) for c in claimed], SCHEDULE, policy=POLICY)
    d = t.deliveries.c
    async with store.engine.connect() as conn:
        statuses = list(await conn.scalars(sa.select(d.status)))
    assert statuses == [MessageStatus.SUCCESS] * 2


async def test_queue_health_tells_held_back_from_late(store: Store) -> None:
    app_id, ep_id = await _app_endpoint(store, "down")
    await _queue(store, app_id, 3)
    other_app, _ = await _app_endpoint(store, "up")
    await _queue(store, other_app, 1)
    async with store.engine.begin() as conn:
        await conn.execute(
            t.endpoints.update()
            .where(t.endpoints.c.id == ep_id)
            .values(circuit_state=1, circuit_probe_at=utcnow() + timedelta(minutes=5))
        )
    await store.heartbeat("abcdefabcdef", "h", 1, 60, 30)
    store.clock = lambda: utcnow() + timedelta(minutes=2)
    health = await store.queue_health(overdue_after=60)
    # The open circuit's three are held, not late; the healthy endpoint's one is late.
    assert (health["held"], health["overdue"], health["due"]) == (3, 1, 4)
    assert health["open_circuits"] == 1 and health["workers"] == 1
    assert not health["healthy"]


async def test_gauges_do_not_call_an_open_circuit_late(store: Store) -> None:
    app_id, ep_id = await _app_endpoint(store, "down")
    await _queue(store, app_id, 2)
    async with store.engine.begin() as conn:
        await conn.execute(
            t.endpoints.update().where(t.endpoints.c.id == ep_id).values(circuit_state=1)
        )
    store.clock = lambda: utcnow() + timedelta(minutes=10)
    gauges = await store.queue_gauges()
    assert gauges["due"] == 2 and gauges["open_circuits"] == 1
    assert gauges["oldest_due_seconds"] == 0.0  # held back, not late: the dashboard stays green
    other_app, _ = await _app_endpoint(store, "up")
    await _queue(store, other_app, 1)
    store.clock = lambda: utcnow() + timedelta(minutes=20)
    assert (await store.queue_gauges())["oldest_due_seconds"] >= 9 * 60


async def test_a_claim_of_one_takes_the_earliest_due_lapsed_claim_or_pending(
    store: Store,
) -> None:
    """An endpoint the plan gives one delivery gets its earliest due one, whether that is a
    pending delivery or a claim whose worker died (SQLite takes the first from the walk
    itself when no lapsed claim comes before it)."""
    app_id, ep = await _app_endpoint(store, "one")
    await _queue(store, app_id, 3)
    d = t.deliveries.c
    async with store.engine.connect() as conn:
        stmt = sa.select(d.id).where(d.endpoint_id == ep).order_by(d.id)
        first, second, third = list(await conn.scalars(stmt))
    now = utcnow()

    async def arrange(rows: dict[str, tuple[int, timedelta]]) -> None:
        async with store.engine.begin() as conn:
            for dlv, (status, ago) in rows.items():
                await conn.execute(
                    t.deliveries.update()
                    .where(d.id == dlv)
                    .values(status=status, next_attempt_at=now - ago, lease="old", worker="w")
                )

    sending, pending = int(MessageStatus.SENDING), int(MessageStatus.PENDING)
    # A lapsed claim older than every pending delivery comes first ...
    await arrange(
        {
            first: (pending, timedelta(seconds=5)),
            second: (sending, timedelta(seconds=50)),
            third: (pending, timedelta(seconds=10)),
        }
    )
    taken = await store.claim_due_deliveries(1, 30, policy=POLICY)
    assert [c.delivery_id for c in taken] == [second]
    # ... a pending one due before the lapsed claim ended comes before it ...
    await arrange(
        {
            first: (pending, timedelta(seconds=60)),
            second: (sending, timedelta(seconds=20)),
            third: (sending, timedelta(seconds=-30)),  # live: held to the cap of 5
        }
    )
    taken = await store.claim_due_deliveries(1, 30, policy=POLICY)
    assert [c.delivery_id for c in taken] == [first]
    # ... and with only a live claim beside it, the due pending one is taken.
    await arrange({second: (pending, timedelta(seconds=1))})
    taken = await store.claim_due_deliveries(1, 30, policy=POLICY)
    assert [c.delivery_id for c in taken] == [second]
