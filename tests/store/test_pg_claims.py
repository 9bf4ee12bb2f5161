"""PostgreSQL's claim: the heads a full claim leaves for the next one (SpareHeads), the
lease, not the plan, deciding every endpoint's room, circuit and pause, and the lease
function (made once per version, skipping endpoints another claim holds)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from postback.delivery.scheduler import SchedulerPolicy
from postback.domain import utcnow
from postback.signing import generate_secret
from postback.store import schema as t
from postback.store.pg.queue import HEADS, SpareHeads
from postback.store.store import Store
from tests.support.server import SECRET_BOX

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
POLICY = SchedulerPolicy(max_in_flight=5)


@pytest.fixture(autouse=True)
def spare_for_a_minute() -> Iterator[None]:
    """Spare heads stay fresh for the whole test (a loaded machine takes its time)."""
    before = SpareHeads.SPARE_FOR
    SpareHeads.SPARE_FOR = 60.0
    yield
    SpareHeads.SPARE_FOR = before


async def _endpoints(store: Store, count: int) -> tuple[str, list[str]]:
    app = await store.create_app({"name": "spare"})
    eps = [
        (
            await store.create_endpoint(
                app["id"], {"url": f"http://127.0.0.1:9/s{i}", "secret": generate_secret()}
            )
        )["id"]
        for i in range(count)
    ]
    return app["id"], eps


async def _set_endpoints(store: Store, ep_ids: list[str], **values: object) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(t.endpoints.update().where(t.endpoints.c.id.in_(ep_ids)).values(values))


async def test_a_full_claim_leaves_the_rest_for_the_next(store: Store) -> None:
    app_id, eps = await _endpoints(store, 6)
    await store.create_message(app_id, {"event_type": "a", "payload": b"{}"})
    seen: list[str] = []
    for _ in range(3):
        claimed = await store.claim_due_deliveries(2, 30, policy=POLICY)
        assert len(claimed) == 2
        seen += [c.endpoint_id for c in claimed]
    assert sorted(seen) == sorted(eps)  # each endpoint once: nothing twice, nothing lost
    assert await store.claim_due_deliveries(2, 30, policy=POLICY) == []


async def test_stale_spare_heads_never_beat_the_circuit_or_a_pause(store: Store) -> None:
    app_id, eps = await _endpoints(store, 4)
    await store.create_message(app_id, {"event_type": "a", "payload": b"{}"})
    first = await store.claim_due_deliveries(1, 30, policy=POLICY)
    rest = sorted(set(eps) - {first[0].endpoint_id})
    # Since that read: one circuit opened (its probe a while off), one endpoint paused by
    # a Retry-After. The spare heads still say both are claimable.
    later = utcnow() + timedelta(minutes=5)
    await _set_endpoints(store, rest[:1], circuit_state=1, circuit_probe_at=later)
    await _set_endpoints(store, rest[1:2], paused_until=later)
    claimed = await store.claim_due_deliveries(10, 30, policy=POLICY)
    assert [c.endpoint_id for c in claimed] == rest[2:]


async def test_a_spare_that_yields_nothing_walks_the_queue_in_the_same_claim(
    store: Store, database_url: str
) -> None:
    app_id, eps = await _endpoints(store, 3)
    await store.create_message(app_id, {"event_type": "a", "payload": b"{}"})
    first = await store.claim_due_deliveries(1, 30, policy=POLICY)
    # Another worker takes what the spare holds ...
    other = Store.connect(database_url, secret_box=SECRET_BOX)
    try:
        taken = await other.claim_due_deliveries(10, 30, policy=POLICY)
    finally:
        await other.close()
    assert {c.endpoint_id for c in taken} == set(eps) - {first[0].endpoint_id}
    # ... and new work arrives for an endpoint the spare does not know.
    new_app, (new_ep,) = await _endpoints(store, 1)
    await store.create_message(new_app, {"event_type": "a", "payload": b"{}"})
    claimed = await store.claim_due_deliveries(10, 30, policy=POLICY)
    assert [c.endpoint_id for c in claimed] == [new_ep]


async def test_live_claims_are_counted_through_the_endpoints_index(store: Store) -> None:
    """The room count reads the (endpoint, status, due) index, not ix_deliveries_worker:
    written as `status = 3`, a planner without statistics picks the partial index on
    sending rows and reads every worker's claims for every endpoint."""
    app_id, _ = await _endpoints(store, 200)
    await store.create_message(app_id, {"event_type": "a", "payload": b"{}"})
    await store.claim_due_deliveries(50, 30, policy=POLICY)
    async with store.engine.connect() as conn:
        plan = "\n".join(
            r[0]
            for r in await conn.execute(
                sa.text("EXPLAIN " + HEADS.replace("$1", ":now").replace("$2", "5")),
                {"now": utcnow()},
            )
        )
    assert "ix_deliveries_worker" not in plan, plan


async def _lease_functions(store: Store) -> list[str]:
    async with store.engine.connect() as conn:
        query = "SELECT proname FROM pg_proc WHERE proname LIKE 'postback\\_lease\\_%'"
        return list(await conn.scalars(sa.text(query)))


async def test_the_lease_is_one_function_made_once_and_made_again_if_lost(
    store: Store, database_url: str
) -> None:
    app_id, _ = await _endpoints(store, 4)
    for _ in range(3):
        await store.create_message(app_id, {"event_type": "a", "payload": b"{}"})
    assert await _lease_functions(store) == []  # a migrated database has none
    assert len(await store.claim_due_deliveries(4, 30, policy=POLICY)) == 4
    (made,) = await _lease_functions(store)
    # Another process of the same code calls the same one.
    other = Store.connect(database_url, secret_box=SECRET_BOX)
    try:
        assert len(await other.claim_due_deliveries(4, 30, policy=POLICY)) == 4
    finally:
        await other.close()
    assert await _lease_functions(store) == [made]
    # Dropped under a running worker (a restore, say): its next claim makes it again.
    async with store.engine.begin() as conn:
        await conn.execute(sa.text(f"DROP FUNCTION {made}"))
    assert len(await store.claim_due_deliveries(4, 30, policy=POLICY)) == 4
    assert await _lease_functions(store) == [made]


async def test_an_endpoint_another_claim_is_leasing_from_is_skipped(store: Store) -> None:
    app_id, eps = await _endpoints(store, 3)
    await store.create_message(app_id, {"event_type": "a", "payload": b"{}"})
    busy = sorted(eps)[1]
    async with store.engine.connect() as conn:
        # Another claimer holds the endpoint's lock: its lease of that room is not
        # committed yet, so this claim cannot know what is left of it and leaves it.
        held = "SELECT pg_try_advisory_xact_lock(hashtextextended(:ep, 7160))"
        assert (await conn.execute(sa.text(held), {"ep": busy})).scalar() is True
        claimed = await store.claim_due_deliveries(10, 30, policy=POLICY)
        assert sorted(c.endpoint_id for c in claimed) == sorted(set(eps) - {busy})
        await conn.rollback()
    claimed = await store.claim_due_deliveries(10, 30, policy=POLICY)
    assert [c.endpoint_id for c in claimed] == [busy]
