"""Memory: the worker's resident memory with many deliveries in flight (``memory``)."""

from __future__ import annotations

import asyncio
import time

from harness import (
    Database,
    Row,
    closing,
    enqueue,
    env_for,
    make_app,
    open_store,
    postback,
    process,
    receiver,
    receiver_json,
    rss_mib,
    wait_for,
)

from postback.store.store import Store


def bench_memory(db: Database, in_flight: int = 1000) -> Row:
    """Worker RSS with ``in_flight`` requests held open by a slow receiver."""
    with receiver(delay=8.0) as hook:

        async def setup() -> Store:
            store = await open_store(db)
            app_id, _ = await make_app(store, [hook + "/mem"])
            await enqueue(store, app_id, in_flight + 200)
            return store

        asyncio.run(closing(setup()))
        env = env_for(
            db.url,
            POSTBACK_WORKER_CONCURRENCY=str(in_flight),
            POSTBACK_ENDPOINT_MAX_IN_FLIGHT=str(in_flight),  # one endpoint holds them all
        )
        with process(postback("worker"), env) as proc:
            wait_for(
                lambda: receiver_json(hook, "/_stats")["in_flight"] >= in_flight,
                60,
                f"{in_flight} requests in flight",
            )
            time.sleep(0.5)
            held = receiver_json(hook, "/_stats")["in_flight"]
            rss, peak = rss_mib(proc.pid)  # taskset execs the worker: same pid
    return Row(
        f"worker memory, {held} requests in flight, {db.name}",
        f"{rss:.0f} MiB RSS (peak {peak:.0f})",
        "—",
        None,
        "< 200 MB",
        peak * 1.048576 < 200,
    )


# ---- the report --------------------------------------------------------------------------
