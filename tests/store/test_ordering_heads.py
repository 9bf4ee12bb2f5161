"""Each ordered key's head, marked (deliveries.head, store/heads.py), on SQLite and
PostgreSQL: a claim takes marked heads by due time, so keys whose head waits are not read
and their later deliveries are not heads; recover and replay-missing put an older
delivery at the head of its key; a message written while its key's head is being finished
becomes the head whichever transaction commits first (PostgreSQL's locks); migration 0016
marks the heads of deliveries already queued."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from postback import ids
from postback.domain import AttemptResult, ClaimedDelivery, RetrySchedule, utcnow
from postback.signing import generate_secret
from postback.store import schema as t
from postback.store.migrate import migrate
from postback.store.store import Store
from tests.support.ordering import ordered_endpoint
from tests.support.server import SECRET_BOX

NOW = utcnow().replace(microsecond=0)
SCHEDULE = RetrySchedule((5, 5), jitter=0)  # three attempts, 5 s apart
_d, _m = t.deliveries.c, t.messages.c


async def _send(store: Store, app_id: str, key: str, n: int = 0) -> str:
    values = {"event_type": "invoice.paid", "payload": b'{"n":%d}' % n, "ordering_key": key}
    msg, _ = await store.create_message(app_id, values)
    return msg["id"]


async def _record(store: Store, claims: list[ClaimedDelivery], code: int) -> None:
    await store.record_attempts(
        [AttemptResult(c, store.clock(), code, "", 1) for c in claims], SCHEDULE
    )


async def _heads(store: Store) -> dict[str, bool]:
    """Each delivery's message id and whether it is marked its key's head."""
    async with store.engine.connect() as conn:
        return dict((await conn.execute(sa.select(_d.msg_id, _d.head))).all())


async def test_a_claim_takes_the_due_head_beside_many_blocked_keys(
    store: Store, clock: list[datetime]
) -> None:
    app_id, _ = await ordered_endpoint(store)
    blocked = [await _send(store, app_id, f"k{n}") for n in range(60)]
    claims = await store.claim_due_deliveries(50, 30)
    assert len(claims) == 50
    # Retrying in 5 s: 50 keys blocked (a 400 fails the attempt, not the circuit).
    await _record(store, claims, 400)
    waiting = [await _send(store, app_id, f"k{n}", 2) for n in range(60)]
    # Ten keys' heads are still due; the fifty retrying ones hold back their second ones.
    clock[0] = NOW + timedelta(seconds=1)
    due = {c.msg_id for c in await store.claim_due_deliveries(100, 30)}
    assert due == set(blocked) - {c.msg_id for c in claims}
    # Twenty more keys are now in flight; a new key's one message is taken beside them.
    fresh = await _send(store, app_id, "new")
    assert [c.msg_id for c in await store.claim_due_deliveries(100, 30)] == [fresh]
    marked = await _heads(store)
    assert all(marked[m] for m in blocked) and marked[fresh]
    assert not any(marked[m] for m in waiting)  # behind their heads, not read by a claim


async def test_a_finished_head_marks_the_next_one_of_its_key(
    store: Store, clock: list[datetime]
) -> None:
    app_id, ep_id = await ordered_endpoint(store)
    first, second, third = [await _send(store, app_id, "k", n) for n in range(3)]
    (head,) = await store.claim_due_deliveries(10, 30)
    assert head.msg_id == first
    await _record(store, [head], 200)  # the backend's plain-success path
    assert (await _heads(store))[second]
    (nxt,) = await store.claim_due_deliveries(10, 30)
    assert nxt.msg_id == second
    await store.record_attempts(  # the general path: a success beside a failure
        [
            AttemptResult(nxt, NOW, 200, "", 1),
            AttemptResult(head, NOW, 500, "", 1),  # a spent lease: changes nothing
        ],
        SCHEDULE,
    )
    assert (await _heads(store))[third]
    await store.skip_head(app_id, ep_id, "k", "operator")  # the last one: nothing after
    assert await store.claim_due_deliveries(10, 30) == []


async def test_recover_puts_an_old_failed_delivery_back_at_its_keys_head(
    store: Store, clock: list[datetime]
) -> None:
    app_id, ep_id = await ordered_endpoint(store)
    old, later = await _send(store, app_id, "k"), await _send(store, app_id, "k", 1)
    for _ in range(3):  # three attempts: failed for good, the next one is the head
        (head,) = await store.claim_due_deliveries(10, 30)
        assert head.msg_id == old
        await _record(store, [head], 500)
        clock[0] += timedelta(seconds=5)
    assert (await _heads(store))[later]
    task = await store.start_recover(app_id, ep_id, NOW - timedelta(hours=1), None)
    await store.run_recover(task["id"])
    assert await _heads(store) == {old: True, later: False}
    assert [c.msg_id for c in await store.claim_due_deliveries(10, 30)] == [old]


async def test_replayed_older_messages_go_before_a_keys_newer_waiting_one(
    store: Store, clock: list[datetime]
) -> None:
    app = await store.create_app({"name": "Billing"})
    app_id = app["id"]
    k1, j1 = await _send(store, app_id, "k"), await _send(store, app_id, "j")
    clock[0] = NOW + timedelta(seconds=1)
    ep = await store.create_endpoint(
        app_id, {"url": "http://127.0.0.1:9/hook", "secret": generate_secret(), "ordered": True}
    )
    k2 = await _send(store, app_id, "k", 2)  # the endpoint's first: k's head, for now
    assert await _heads(store) == {k2: True}
    task = await store.start_replay(app_id, ep["id"], NOW - timedelta(hours=1), None)
    await store.run_replay(task["id"])
    assert await _heads(store) == {k1: True, j1: True, k2: False}
    claimed = {c.msg_id for c in await store.claim_due_deliveries(10, 30)}
    assert claimed == {k1, j1}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_message_written_while_its_keys_head_finishes_is_the_head(
    store: Store, clock: list[datetime]
) -> None:
    """The two orders of a recorder finishing a key's head and a writer adding to the key,
    on PostgreSQL where they run at once: whichever commits second sees the other."""
    app_id, _ = await ordered_endpoint(store)
    await _send(store, app_id, "k")
    (head,) = await store.claim_due_deliveries(10, 30)
    # The recorder first: the head is finished, not committed, when the message arrives.
    async with store.engine.connect() as conn:
        tx = await conn.begin()
        finish = {"status": 0, "next_attempt_at": None, "lease": None}
        await conn.execute(t.deliveries.update().where(_d.id == head.delivery_id).values(finish))
        writing = asyncio.ensure_future(_send(store, app_id, "k", 1))
        await asyncio.sleep(0.5)
        assert not writing.done()  # it holds the head's row FOR SHARE: it waits
        await tx.commit()
    second = await asyncio.wait_for(writing, 30)
    assert (await _heads(store))[second]
    (nxt,) = await store.claim_due_deliveries(10, 30)
    assert nxt.msg_id == second
    # The writer first: it holds the key's busy head while the recorder finishes it.
    row = {
        "id": ids.new_id(ids.MESSAGE),
        "app_id": app_id,
        "event_type": "invoice.paid",
        "event_id": None,
        "payload": b"{}",
        "channels": None,
        "tags": None,
        "created_at": NOW,
        "deliver_at": None,
        "expunge_at": NOW + timedelta(days=1),
        "trace_context": None,
        "product": None,
        "ordering_key": "k",
    }
    async with store.engine.connect() as conn:
        tx = await conn.begin()
        await store._insert_message(conn, row)  # behind the head in flight
        recording = asyncio.ensure_future(_record(store, [nxt], 200))
        await asyncio.sleep(0.5)
        assert not recording.done()  # the head's row is held: the recorder waits
        await tx.commit()
    await asyncio.wait_for(recording, 30)
    assert (await _heads(store))[row["id"]]


async def test_migration_0016_marks_the_heads_of_queued_deliveries(
    empty_database_url: str,
) -> None:
    from alembic import command

    from postback.store.migrate import alembic_config

    store = Store.connect(empty_database_url, secret_box=SECRET_BOX)
    try:
        await migrate(store.engine)
        store.clock = lambda: NOW
        app_id, _ = await ordered_endpoint(store)
        done, k1, k2 = [await _send(store, app_id, "k", n) for n in range(3)]
        j1, j2 = await _send(store, app_id, "j"), await _send(store, app_id, "j", 1)
        first = {c.msg_id: c for c in await store.claim_due_deliveries(10, 30)}
        await _record(store, [first[done]], 200)
        expected = {k1: True, k2: False, j1: True, j2: False}
        assert (await _heads(store)).items() > expected.items()

        def downgrade(connection: sa.Connection) -> None:
            command.downgrade(alembic_config(connection), "0015")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
        await migrate(store.engine)  # 0016 again: each key's first waiting one
        assert await _heads(store) == expected | {done: False}
    finally:
        await store.close()
