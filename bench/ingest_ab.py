"""POST /msg/ on PostgreSQL, two source trees side by side (A/B): what a change costs at ingest.

    python bench/ingest_ab.py A_SRC B_SRC [--rounds 5] [--seconds 3]

A_SRC and B_SRC are ``src`` directories (say a ``git archive`` of the base commit, and this
worktree's). Each round starts one ``postback api`` per tree, in turn, against the same fresh
database, and measures accepted messages per second with run.py's closed loop (16 clients,
1 KB payload, one endpoint). Rounds alternate which tree goes first, so a noisy neighbour
skews neither side alone; the medians and bests are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import run


def rate(src: str, db: run.Database, app_id: str, seconds: float) -> float:
    port = run.free_port()
    env = run.env_for(db.url, POSTBACK_PORT=str(port)) | {"PYTHONPATH": src}
    base = f"http://127.0.0.1:{port}"
    auth = {"authorization": f"Bearer {run.TOKEN}", "content-type": "application/json"}
    body = run.encode_json({"eventType": run.EVENT, "payload": run.PAYLOAD_1K})

    async def post(s: aiohttp.ClientSession) -> int:
        async with s.post(f"{base}/api/v1/app/{app_id}/msg", data=body, headers=auth) as r:
            await r.read()
            return r.status

    with run.process(run.postback("api"), env):
        run.wait_for(lambda: run._get_ok(base + "/api/v1/health"), 30, "api")
        return asyncio.run(run.closed_loop_rate(post, seconds, 16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a_src")
    parser.add_argument("b_src")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    srcs = {"A": os.path.abspath(args.a_src), "B": os.path.abspath(args.b_src)}
    db = run.pg_db("ingestab")
    try:

        async def setup() -> str:
            store = await run.open_store(db)
            try:
                app_id, _ = await run.make_app(store, ["http://127.0.0.1:9/never"])
            finally:
                await store.close()
            return app_id

        app_id = asyncio.run(setup())
        rates: dict[str, list[float]] = {"A": [], "B": []}
        for n in range(args.rounds):
            for name in ("A", "B") if n % 2 == 0 else ("B", "A"):
                rates[name].append(rate(srcs[name], db, app_id, args.seconds))
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
