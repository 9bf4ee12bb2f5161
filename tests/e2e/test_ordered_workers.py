"""Ordered delivery with worker processes on PostgreSQL (`postback api` + `postback
worker`s): with two workers each key's messages still arrive strictly in order, one at a
time, while a failing head holds back only its own key; a worker killed (kill -9) while it
holds a key's head leaves the order intact (the head is sent again before the next)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from tests.support.ordering import (
    EXPECTED,
    KEYS,
    PER_KEY,
    RETRIES,
    KeyedReceiver,
    call,
    check_order,
    send_keyed,
)
from tests.support.polling import eventually
from tests.support.procs import Proc, env_for, free_port, wait_healthy
from tests.support.receivers import Behaviour, Receiver

TOKEN = "pb_e2e_ordered"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _queue_keyed(url: str, api: Proc, hook: str) -> None:
    """Once the API answers: an application, an ordered endpoint at ``hook``, and the
    keyed messages queued for it."""
    wait_healthy(url, api)
    app = call(url, TOKEN, "POST", "/app", {"name": "billing"}).json()["id"]
    made = call(url, TOKEN, "POST", f"/app/{app}/endpoint", {"url": hook, "ordered": True})
    assert made.status_code == 201
    send_keyed(url, TOKEN, app)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_keep_each_keys_order(
    database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    env = env_for(
        database_url,
        POSTBACK_PORT=str(port),
        POSTBACK_ADMIN_TOKEN=TOKEN,
        POSTBACK_RETRY_SCHEDULE=",".join(str(s) for s in RETRIES),
        POSTBACK_RETRY_JITTER="0",
    )
    url = f"http://127.0.0.1:{port}"
    keyed = KeyedReceiver()
    hook = receiver.route("/ordered", keyed.behaviour())
    api = Proc(["api"], env, tmp_path)
    workers: list[Proc] = []
    try:
        _queue_keyed(url, api, hook)  # queued before the workers start: both find work
        workers = [Proc(["worker"], env, tmp_path) for _ in range(2)]
        check_order([r.body for r in receiver.wait_for(EXPECTED, "/ordered", timeout=60)])
        assert keyed.overlaps == []  # never two requests of one key at once
    finally:
        for worker in workers:
            assert worker.stop() == 0, worker.output()
        assert api.stop() == 0, api.output()


def _hang_first_a1(seen: list[str]) -> Behaviour:
    """Key A's first message hangs the first time (its worker is killed meanwhile)."""

    async def respond(request: web.Request, _: int) -> web.StreamResponse:
        name = orjson.loads(await request.read())["n"]
        seen.append(name)
        if name == "A1" and seen.count("A1") == 1:
            await asyncio.sleep(60)
        return web.Response(text="ok")

    return respond


def _collapsed(names: list[str]) -> list[str]:
    """Adjacent repeats made one: a resend after a kill is at-least-once, right behind."""
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_killed_mid_key_keeps_the_order(
    database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    env = env_for(database_url, POSTBACK_PORT=str(port), POSTBACK_ADMIN_TOKEN=TOKEN)
    url = f"http://127.0.0.1:{port}"
    seen: list[str] = []
    hook = receiver.route("/ordered", _hang_first_a1(seen))
    api = Proc(["api"], env, tmp_path)
    workers: list[Proc] = []
    try:
        _queue_keyed(url, api, hook)
        workers.append(Proc(["worker"], env, tmp_path))
        eventually(lambda: "A1" in seen, 30)
        workers[0].popen.kill()  # SIGKILL while A1 is out: its claim is simply left
        workers[0].popen.wait(10)
        workers.append(Proc(["worker"], env, tmp_path))
        receiver.wait_for(len(KEYS) * PER_KEY + 1, "/ordered", timeout=60)
        for key in KEYS:
            mine = [n for n in seen if n[0] == key]
            assert _collapsed(mine) == [f"{key}{n}" for n in range(1, PER_KEY + 1)], seen
        assert [n for n in seen if n[0] == "A"][:2] == ["A1", "A1"]  # sent again, first
    finally:
        for worker in workers[1:]:
            assert worker.stop() == 0, worker.output()
        assert api.stop() == 0, api.output()
