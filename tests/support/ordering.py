"""What the ordered-delivery tests share: a receiver that fails key A's first message three
times and notes any key with two requests open at once, the keyed messages they send, and
the order they check (tests/api/test_ordered_delivery.py, tests/e2e/test_ordered_workers.py)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from aiohttp import web

from postback.signing import generate_secret
from postback.store.store import Store
from tests.support.receivers import Behaviour

# Five attempts in all, half a second apart: the first message of key A needs four.
RETRIES = (0.5, 0.5, 0.5, 0.5)
KEYS = ("A", "B", "C")
PER_KEY = 5


def call(url: str, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"}
    return httpx.request(method, f"{url}/api/v1{path}", json=body, headers=headers, timeout=20)


class KeyedReceiver:
    """The behaviour of one receiver route: key A's first message fails three times;
    ``overlaps`` lists every key that had two requests being answered at once."""

    def __init__(self) -> None:
        self.failures = 0
        self.open: dict[str, int] = {}
        self.overlaps: list[str] = []

    def behaviour(self) -> Behaviour:
        async def respond(request: web.Request, _: int) -> web.StreamResponse:
            name = orjson.loads(await request.read())["n"]
            key = name[0]
            self.open[key] = self.open.get(key, 0) + 1
            if self.open[key] > 1:
                self.overlaps.append(key)
            try:
                if name == "A1" and self.failures < 3:
                    self.failures += 1
                    return web.Response(status=500, text="not yet")
                return web.Response(text="ok")
            finally:
                self.open[key] -= 1

        return respond


def send_keyed(url: str, token: str, app: str) -> None:
    """PER_KEY messages of each key, interleaved, in this order."""
    for n in range(1, PER_KEY + 1):
        for key in KEYS:
            body = {"eventType": "invoice.paid", "payload": {"n": f"{key}{n}"}, "orderingKey": key}
            assert call(url, token, "POST", f"/app/{app}/msg", body).status_code == 202


EXPECTED = len(KEYS) * PER_KEY + 3  # A1's three failures


def check_order(got: list[bytes]) -> None:
    """Every key strictly in order (A's first message four times: three failures, then the
    success), and the other keys all delivered before A's first message got through."""
    seen = [orjson.loads(b)["n"] for b in got]
    for key in KEYS:
        expected = [f"{key}{n}" for n in range(1, PER_KEY + 1)]
        if key == "A":
            expected[:1] = ["A1"] * 4
        assert [n for n in seen if n[0] == key] == expected, seen
    a1_done = len(seen) - seen[::-1].index("A1") - 1
    for key in KEYS[1:]:
        assert seen.index(f"{key}{PER_KEY}") < a1_done, seen  # no waiting behind A's head


async def ordered_endpoint(store: Store) -> tuple[str, str]:
    """An application "Billing" with one ordered endpoint (nothing listens there): the ids."""
    app = await store.create_app({"name": "Billing"})
    values = {"url": "http://127.0.0.1:9/hook", "secret": generate_secret(), "ordered": True}
    ep = await store.create_endpoint(app["id"], values)
    return app["id"], ep["id"]
