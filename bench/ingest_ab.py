"""Ingest on PostgreSQL, two source trees side by side (A/B): what a change costs.

    python bench/ingest_ab.py A_SRC B_SRC [--rounds 5] [--seconds 3] [--store]

A_SRC and B_SRC are ``src`` directories (say a ``git archive`` of the base commit, and this
worktree's). Each round starts one ``postback api`` per tree, in turn, against the same fresh
database, and measures accepted messages per second with harness.py's closed loop (16 clients,
1 KB payload, one endpoint), as run.py's "API accepted msg/s" row does. With ``--store``, a
process per tree calls ``Store.create_message`` back to back instead (no HTTP, one message
per transaction): the write itself, with less noise. Rounds alternate which tree goes first,
so a noisy neighbour skews neither side alone; the medians and bests are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import harness as h


def rate(src: str, db: h.Database, app_id: str, seconds: float) -> float:
    port = h.free_port()
    env = h.env_for(db.url, POSTBACK_PORT=str(port)) | {"PYTHONPATH": src}
    base = f"http://127.0.0.1:{port}"
    auth = {"authorization": f"Bearer {h.TOKEN}", "content-type": "application/json"}
    body = h.encode_json({"eventType": h.EVENT, "payload": h.PAYLOAD_1K})

    async def post(s: aiohttp.ClientSession) -> int:
        async with s.post(f"{base}/api/v1/app/{app_id}/msg", data=body, headers=auth) as r:
            await r.read()
            return r.status

    with h.process(h.postback("api"), env):
        h.wait_for(lambda: h.get_ok(base + "/api/v1/health"), 30, "api")
        return asyncio.run(h.closed_loop_rate(post, seconds, 16))


# Run in a child process with PYTHONPATH set to one tree: messages/s through that tree's Store.
STORE_LOOP = """
import asyncio, sys, time
from postback.store.store import Store

async def main(url, app_id, seconds, payload):
    store = Store.connect(url)
    try:
        for _ in range(50):
            await store.create_message(app_id, {"event_type": "invoice.paid", "payload": payload})
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            await store.create_message(app_id, {"event_type": "invoice.paid", "payload": payload})
            done += 1
        print(done / (time.perf_counter() - started))
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].encode()))
"""


def store_rate(src: str, db: h.Database, app_id: str, seconds: float) -> float:
    env = h.env_for(db.url) | {"PYTHONPATH": src}
    payload = h.encode_json(h.PAYLOAD_1K).decode()
    argv = [sys.executable, "-c", STORE_LOOP, db.url, app_id, str(seconds), payload]
    done = subprocess.run(
        h.pinned(h.SENDER_CPU, argv), env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a_src")
    parser.add_argument("b_src")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--store", action="store_true", help="Store.create_message, no HTTP")
    args = parser.parse_args()
    srcs = {"A": os.path.abspath(args.a_src), "B": os.path.abspath(args.b_src)}
    db = h.pg_db("ingestab")
    try:

        async def setup() -> str:
            store = await h.open_store(db)
            try:
                app_id, _ = await h.make_app(store, ["http://127.0.0.1:9/never"])
            finally:
                await store.close()
            return app_id

        app_id = asyncio.run(setup())
        rates: dict[str, list[float]] = {"A": [], "B": []}
        for n in range(args.rounds):
            for name in ("A", "B") if n % 2 == 0 else ("B", "A"):
                measure = store_rate if args.store else rate
                rates[name].append(measure(srcs[name], db, app_id, args.seconds))
                print(f"round {n + 1} {name}: {rates[name][-1]:,.0f} msg/s", flush=True)
    finally:
        db.drop()
    for name, src in srcs.items():
        got = rates[name]
        print(
            f"{name} ({src}): median {statistics.median(got):,.0f} msg/s,"
            f" best {max(got):,.0f} msg/s, all {', '.join(f'{r:,.0f}' for r in got)}"
        )
    ratio = statistics.median(rates["B"]) / statistics.median(rates["A"])
    print(f"B/A median ratio {ratio:.3f}, best ratio {max(rates['B']) / max(rates['A']):.3f}")


if __name__ == "__main__":
    main()
