"""A webhook receiver in its own process that counts what arrives, per path and webhook-id.

    python -m tests.support.counting_receiver PORT

Every POST answers 200. ``GET /_stats`` returns the totals; ``GET /_ids?path=/a`` the ids
received on one path. Used by the scale-out and crash tests to prove nothing was lost.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

from aiohttp import web

received: Counter[tuple[str, str]] = Counter()


async def hook(request: web.Request) -> web.Response:
    await request.read()
    received[(request.path, request.headers.get("webhook-id", ""))] += 1
    if "delay" in request.query:  # a slow receiver: counted on arrival, answers later
        await asyncio.sleep(float(request.query["delay"]))
    return web.Response(text="ok")


async def stats(_: web.Request) -> web.Response:
    total = sum(received.values())
    per_path = Counter(path for path, _ in received)
    return web.json_response(
        {
            "total": total,
            "unique": len(received),
            "duplicates": total - len(received),
            "per_path": per_path,
        }
    )


async def ids(request: web.Request) -> web.Response:
    path = request.query["path"]
    return web.json_response(sorted(i for p, i in received if p == path))


def main() -> None:
    app = web.Application()
    app.router.add_get("/_stats", stats)
    app.router.add_get("/_ids", ids)
    app.router.add_post("/{tail:.*}", hook)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
