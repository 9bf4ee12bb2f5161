"""Claims: the cost of claiming due deliveries with a small and a very large queue of
future ones (``claim``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import statistics
import time

import sqlalchemy as sa
from harness import (
    EVENT,
    Database,
    Row,
    enqueue,
    make_app,
    open_store,
)

from postback import ids
from postback.domain import MessageStatus, TriggerType, utcnow
from postback.store import schema as t
from postback.store.routing import new_delivery
from postback.store.store import Store


async def _fill_queue(store: Store, app_id: str, future: int) -> None:
    """``future`` deliveries due tomorrow: messages x fake endpoints, inserted in SQL."""
    per_side = 1000
    n_messages = future // per_side
    now = utcnow()
    marker = secrets.token_hex(6)  # tells this fill's rows from earlier ones
    sealed, body = f"unused-{marker}", f'{{"fill":"{marker}"}}'.encode()
    async with store.engine.begin() as conn:
        await conn.execute(
            t.endpoints.insert(),
            [
                {
                    "id": ids.new_id(ids.ENDPOINT),
                    "app_id": app_id,
                    "url": "http://127.0.0.1:9/x",
                    "description": "",
                    "disabled": False,
                    "metadata": {},
                    "headers": {},
                    "secret": sealed,
                    "created_at": now,
                    "updated_at": now,
                }
                for _ in range(per_side)
            ],
        )
        await conn.execute(
            t.messages.insert(),
            [
                {
                    "id": ids.new_id(ids.MESSAGE),
                    "app_id": app_id,
                    "event_type": EVENT,
                    "payload": body,
                    "created_at": now,
                }
                for _ in range(n_messages)
            ],
        )
        template = new_delivery(
            "tmpl", "tmpl", app_id, now + dt.timedelta(days=1), now
        )  # column values the SQL copies
        # As the store writes them: due tomorrow, so parked (wake_at), not in the queue index.
        await conn.execute(
            sa.text(
                "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count,"
                " trigger_type, next_attempt_at, wake_at, rate_slot, created_at, updated_at)"
                " SELECT 'dlv_' || substr(m.id, length(m.id) - 15) || substr(e.id, length(e.id)"
                " - 15), m.id, e.id, :app, :status, 0, :trigger, :due, :wake, false, :now, :now"
                " FROM messages m CROSS JOIN endpoints e"
                " WHERE m.payload = :marker AND e.secret = :sealed"
            ).bindparams(
                sa.bindparam("due", type_=t.deliveries.c.next_attempt_at.type),
                sa.bindparam("wake", type_=t.deliveries.c.wake_at.type),
                sa.bindparam("now", type_=t.deliveries.c.created_at.type),
            ),
            {
                "app": app_id,
                "status": int(MessageStatus.PENDING),
                "trigger": int(TriggerType.SCHEDULED),
                "due": template["next_attempt_at"],
                "wake": template["wake_at"],
                "now": now,
                "marker": body,
                "sealed": sealed,
            },
        )
        if store.backend.name == "postgresql":
            await conn.execute(sa.text("ANALYZE deliveries"))


async def _claim_times(store: Store, ep_id: str, due: int, rounds: int) -> float:
    """Median seconds of claiming ``due`` due deliveries, over ``rounds`` claims."""
    d = t.deliveries.c
    times = []
    for _ in range(rounds):
        async with store.engine.begin() as conn:  # make them due again (not timed)
            await conn.execute(
                t.deliveries.update()
                .where(d.endpoint_id == ep_id)
                .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1), lease=None)
            )
        started = time.perf_counter()
        claimed = await store.claim_due_deliveries(due, 60)
        times.append(time.perf_counter() - started)
        assert len(claimed) == due, (len(claimed), due)
    return statistics.median(times)


def bench_claim(db: Database, due: int = 100, small: int = 10_000, large: int = 1_000_000) -> Row:
    """Claiming ``due`` due deliveries with ``small`` vs ``large`` future ones queued."""

    async def run() -> tuple[float, float]:
        store = await open_store(db)
        try:
            app_id, (ep_id,) = await make_app(store, ["http://127.0.0.1:9/due"])
            # The figure is the claim's cost, not the endpoint's cap: let it take them all.
            await store.update_endpoint(app_id, ep_id, {"max_in_flight": due})
            await enqueue(store, app_id, due)
            await _fill_queue(store, app_id, small)
            small_t = await _claim_times(store, ep_id, due, 25)
            await _fill_queue(store, app_id, large - small)
            large_t = await _claim_times(store, ep_id, due, 25)
        finally:
            await store.close()
        return small_t, large_t

    small_t, large_t = asyncio.run(run())
    ratio = large_t / small_t
    return Row(
        f"claim {due} with {large:,} future queued, {db.name}",
        f"{large_t * 1000:.2f} ms",
        f"{small:,} queued {small_t * 1000:.2f} ms",
        ratio,
        "≤ 1.3x",
        ratio <= 1.3,
    )
