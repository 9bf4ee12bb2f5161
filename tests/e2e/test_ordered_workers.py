"""Ordered delivery with two worker processes on PostgreSQL (`postback api` + two
`postback worker`): each key's messages still arrive strictly in order, one at a time,
while a failing head holds back only its own key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ordering import (
    EXPECTED,
    RETRIES,
    KeyedReceiver,
    call,
    check_order,
    send_keyed,
)
from tests.support.procs import Proc, env_for, free_port, wait_healthy
from tests.support.receivers import Receiver

TOKEN = "pb_e2e_ordered"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


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
        wait_healthy(url, api)
        app = call(url, TOKEN, "POST", "/app", {"name": "billing"}).json()["id"]
        made = call(url, TOKEN, "POST", f"/app/{app}/endpoint", {"url": hook, "ordered": True})
        assert made.status_code == 201
        send_keyed(url, TOKEN, app)  # queued before the workers start: both find work
        workers = [Proc(["worker"], env, tmp_path) for _ in range(2)]
        check_order([r.body for r in receiver.wait_for(EXPECTED, "/ordered", timeout=60)])
        assert keyed.overlaps == []  # never two requests of one key at once
    finally:
        for worker in workers:
            assert worker.stop() == 0, worker.output()
        assert api.stop() == 0, api.output()
