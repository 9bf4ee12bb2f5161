"""Ordered delivery (issue 23): a worker's deliveries/s to an ordered endpoint with 1,000
keys against an unordered one (``ordered``), and the claim's cost for other endpoints
beside an ordered endpoint with 100,000 blocked keys (``claim-blocked``)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import harness as h
import sqlalchemy as sa
from scheduling import claims_side_by_side

from postback import ids
from postback.domain import MessageStatus, encode_json, utcnow
from postback.signing import generate_secret
from postback.store import schema as t
from postback.store.store import Store

SECRET = generate_secret()


async def _enqueue(store: Store, app_id: str, count: int, keys: int | None) -> None:
    """``count`` 1 KB messages, the n-th with ordering key ``k{n % keys}`` (none if None)."""
    payload = encode_json(h.PAYLOAD_1K)
    sem = asyncio.Semaphore(16)

    async def one(n: int) -> None:
        values = {"event_type": h.EVENT, "payload": payload}
        if keys:
            values["ordering_key"] = f"k{n % keys}"
        async with sem:
            await store.create_message(app_id, values)

    await asyncio.gather(*(one(n) for n in range(count)))


def bench_ordered_worker(db: h.Database, count: int = 4000, keys: int = 1000) -> h.Row:
    """One worker process (the same settings for both sides, a fresh one per drain):
    ``count`` deliveries to an unordered endpoint, then to an ordered one with ``keys``
    keys, alternated over rounds, the best drain of each side kept."""
    with h.receiver() as hook:

        async def measure(rounds: int) -> tuple[float, float]:
            store = await h.open_store(db)
            plain_app, _ = await h.make_app(store, [hook + "/plain"])
            ordered_app, (ordered_ep,) = await h.make_app(store, [hook + "/ordered"])
            await store.update_endpoint(ordered_app, ordered_ep, {"ordered": True})
            best = {"plain": float("inf"), "ordered": float("inf")}
            done = 0
            try:
                for _ in range(rounds):
                    for side, app_id, n_keys in (
                        ("plain", plain_app, None),
                        ("ordered", ordered_app, keys),
                    ):
                        await _enqueue(store, app_id, count, n_keys)
                        done += count
                        h.receiver_json(hook, "/_reset")
                        env = h.env_for(db.url, POSTBACK_WORKER_CONCURRENCY=str(h.CONCURRENCY))
                        with h.process(h.postback("worker"), env):
                            deadline = time.monotonic() + 240
                            while await h.count_status(store, MessageStatus.SUCCESS) < done:
                                if time.monotonic() > deadline:
                                    raise TimeoutError(f"{side}: not recorded in 240 s")
                                await asyncio.sleep(0.05)
                            finished = time.time()
                        first = min(h.receiver_json(hook, "/_times").values())
                        best[side] = min(best[side], finished - first)
            finally:
                await store.close()
            return best["plain"], best["ordered"]

        plain, ordered = asyncio.run(measure(2))
    rate, base_rate = count / ordered, count / plain
    ratio = rate / base_rate
    return h.Row(
        f"worker deliveries/s to an ordered endpoint, {keys:,} keys, {db.name}",
        f"{rate:,.0f}/s",
        f"unordered endpoint {base_rate:,.0f}/s",
        ratio,
        "measured",
        None,
    )


async def _blocked_keys(store: Store, app_id: str, ep_id: str, keys: int) -> None:
    """``keys`` keys of an ordered endpoint, each blocked by its head retrying in an hour,
    with one delivery due now waiting behind it, written in SQL (two messages a key)."""
    now = utcnow()
    has_heads = "head" in t.deliveries.c  # the bench also runs on the version before heads
    async with store.engine.begin() as conn:
        for place in (1, 2):
            rows = [
                {
                    "id": ids.new_id(ids.MESSAGE),
                    "app_id": app_id,
                    "event_type": h.EVENT,
                    "payload": b"{}",
                    "created_at": now,
                    "ordering_key": f"k{n}",
                    "event_id": f"place{place}-{n}",
                }
                for n in range(keys)
            ]
            for start in range(0, keys, 5000):
                await conn.execute(t.messages.insert(), rows[start : start + 5000])
            head = ", head" if has_heads else ""
            await conn.execute(
                sa.text(
                    "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status,"
                    " attempt_count, trigger_type, next_attempt_at, rate_slot, ordering_key,"
                    f" seq, created_at, updated_at{head})"
                    " SELECT 'dlv_' || substr(m.id, 5), m.id, :ep, m.app_id, 1, :tries, 0, :due,"
                    f" false, m.ordering_key, :place, :now, :now{', :head' if head else ''}"
                    " FROM messages m WHERE m.app_id = :app AND m.event_id LIKE :like"
                ).bindparams(
                    sa.bindparam("due", type_=t.deliveries.c.next_attempt_at.type),
                    sa.bindparam("now", type_=t.deliveries.c.created_at.type),
                ),
                {
                    "ep": ep_id,
                    "app": app_id,
                    "tries": 1 if place == 1 else 0,
                    "due": now + timedelta(hours=1) if place == 1 else now - timedelta(seconds=1),
                    "place": place,
                    "now": now,
                    "like": f"place{place}-%",
                    **({"head": place == 1} if head else {}),
                },
            )


def bench_claim_beside_blocked(
    db: h.Database, others: int = 100, keys: int = 100_000, rounds: int = 7, claims: int = 9
) -> h.Row:
    """Two databases set up alike (an application with ``others`` endpoints with one due
    delivery each, and an ordered endpoint), one of them with ``keys`` blocked keys on the
    ordered endpoint; claims timed on the two in alternation, the median of the rounds'
    ratios reported (as bench/scheduling.py's claim-backlog)."""

    async def prepare(stores: list[Store]) -> None:
        for n, store in enumerate(stores):
            urls = [f"http://127.0.0.1:9/o{i}" for i in range(others)]
            app_id, _ = await h.make_app(store, urls)
            await store.create_message(app_id, {"event_type": h.EVENT, "payload": b"{}"})
            ordered = await store.create_endpoint(  # after the message: none of it
                app_id,
                {"url": "http://127.0.0.1:9/ordered", "secret": SECRET, "ordered": True},
            )
            if n:
                await _blocked_keys(store, app_id, ordered["id"], keys)

    return claims_side_by_side(
        db,
        "blocked-base",
        prepare,
        f"claim 1 each for {others} endpoints beside {keys:,} blocked keys",
        "no blocked keys",
        others=others,
        rounds=rounds,
        claims=claims,
        exact=True,
    )
