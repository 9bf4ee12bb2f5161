"""One customer's dead or slow endpoint never delays another customer's: real processes
(`postback serve` on SQLite; `postback api` + two `postback worker` on PostgreSQL) with
default scheduler settings, a backlog of 10,000 due deliveries to an endpoint that hangs,
answers after 10 s or fails, and another application's healthy endpoint whose latency
(accepted -> received) is measured at its receiver."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from svix.api import MessageIn, Svix, SvixOptions

from postback import ids
from postback.config import Settings
from postback.domain import MessageStatus, utcnow
from postback.signing import generate_secret
from postback.store import schema as t
from postback.store.migrate import migrate
from postback.store.routing import new_delivery
from postback.store.store import Store
from tests.support.procs import Proc, env_for, free_port, wait_healthy
from tests.support.receivers import Receiver, fail, hang, ok
from tests.support.server import SECRET_BOX, SECRET_KEY, TOKEN, run_sync

BACKLOG = 10_000
HEALTHY_MESSAGES = 40


async def _prepare(database_url: str, bad_url: str, good_url: str) -> tuple[str, str]:
    """Both applications and endpoints, and the bad one's backlog (inserted in SQL, all
    due and older than anything the healthy application sends)."""
    store = Store.connect(database_url, secret_box=SECRET_BOX)
    try:
        await migrate(store.engine)
        bad_app = await store.create_app({"name": "merchant with a dead server", "uid": "bad"})
        bad = await store.create_endpoint(
            bad_app["id"], {"url": bad_url, "secret": generate_secret()}
        )
        good_app = await store.create_app({"name": "healthy merchant", "uid": "good"})
        await store.create_endpoint(good_app["id"], {"url": good_url, "secret": generate_secret()})
        now = utcnow()
        due = now - timedelta(minutes=5)
        messages = [
            {
                "id": ids.new_id(ids.MESSAGE),
                "app_id": bad_app["id"],
                "event_type": "purchase.approved",
                "payload": b'{"backlog":true}',
                "created_at": due,
            }
            for _ in range(BACKLOG)
        ]
        deliveries = [new_delivery(m["id"], bad["id"], bad_app["id"], due, now) for m in messages]
        async with store.engine.begin() as conn:
            await conn.execute(t.messages.insert(), messages)
            await conn.execute(t.deliveries.insert(), deliveries)
        return bad_app["id"], good_app["id"]
    finally:
        await store.close()


@contextlib.contextmanager
def _processes(database_url: str, cwd: Path) -> Iterator[tuple[str, list[Proc]]]:
    port = free_port()
    env = env_for(
        database_url,
        POSTBACK_PORT=str(port),
        POSTBACK_ADMIN_TOKEN=TOKEN,
        POSTBACK_SECRET_KEY=SECRET_KEY,
        # Default scheduler and worker settings; only the retries are scaled down (the
        # bad endpoint's failures come back sooner, which only makes it harder).
        POSTBACK_POLL_INTERVAL="1",
    )
    if database_url.startswith("sqlite"):
        procs = [Proc(["serve"], env, cwd)]
    else:
        procs = [Proc(["api"], env, cwd), Proc(["worker"], env, cwd), Proc(["worker"], env, cwd)]
    try:
        yield f"http://127.0.0.1:{port}", procs
    finally:
        for proc in procs:
            proc.stop()


@pytest.mark.parametrize("bad", ["hangs", "answers after 10 s", "fails"])
def test_a_dead_endpoint_does_not_delay_another_application(
    database_url: str, tmp_path: Path, receiver: Receiver, bad: str
) -> None:
    behaviour = {"hangs": hang(3600), "answers after 10 s": hang(10), "fails": fail(500)}[bad]
    bad_url = receiver.route("/bad", behaviour)
    good_url = receiver.route("/good", ok())
    _, good_app = run_sync(_prepare(database_url, bad_url, good_url))
    with _processes(database_url, tmp_path) as (url, procs):
        wait_healthy(url, procs[0])
        # Let the workers take the backlog in hand first.
        receiver.wait_for(5, "/bad", timeout=60)
        svix = Svix(TOKEN, SvixOptions(server_url=url, retry_schedule=[], timeout=10))
        sent: dict[str, float] = {}
        for n in range(HEALTHY_MESSAGES):
            started = time.time()
            msg = svix.message.create(
                good_app, MessageIn(event_type="invoice.paid", payload={"n": n})
            )
            sent[msg.id] = started
            time.sleep(0.05)
        got = receiver.wait_for(HEALTHY_MESSAGES, "/good", timeout=30)
        latency = sorted(r.at - sent[r.headers["webhook-id"]] for r in got)
        ids_ = [r.headers["webhook-id"] for r in got]
        assert sorted(ids_) == sorted(sent), "lost or sent twice"
        p99 = latency[int(len(latency) * 0.99) - 1]
        assert p99 <= 1.0, (
            f"healthy endpoint delayed: p50 {statistics.median(latency):.3f} s, p99 {p99:.3f} s"
        )
        # The bad endpoint never had more than its cap of requests open at once (counted
        # by the receiver as they come and go: on a slow machine the hanging ones time out
        # and are tried again, so the total may pass the cap, never the open ones).
        assert 0 < receiver.peak_open("/bad") <= Settings().endpoint_max_in_flight
        for proc in procs:
            assert proc.popen.poll() is None, proc.output()


async def _statuses(database_url: str) -> dict[int, int]:
    store = Store.connect(database_url, secret_box=SECRET_BOX)
    try:
        d = t.deliveries.c
        async with store.engine.connect() as conn:
            rows = await conn.execute(sa.select(d.status, sa.func.count()).group_by(d.status))
            return {int(s): n for s, n in rows}
    finally:
        await store.close()


def test_receivers_that_push_back_get_everything_once(
    make_server: object, receiver: Receiver, database_url: str
) -> None:
    from svix.api import ApplicationIn, EndpointIn

    from tests.support.receivers import fail_then_ok

    async def too_many(request: object, nth: int) -> object:
        from aiohttp import web

        if nth < 2:
            return web.Response(status=429, headers={"Retry-After": "1"}, text="slow down")
        return web.Response(text="ok")

    server = make_server(retry_schedule=(0.05, 0.05, 0.05, 0.05))  # type: ignore[operator]
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/503", fail_then_ok(2, 503))))
    ep429 = svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/429", too_many)))  # type: ignore[arg-type]
    msgs = [
        svix.message.create(app.id, MessageIn(event_type="a", payload={"n": n})).id
        for n in range(3)
    ]
    receiver.wait_for(2 + 3, "/503", timeout=15)
    got429 = receiver.wait_for(2 + 3, "/429", timeout=15)
    # After each 429 the endpoint waited for its Retry-After (1 s): whatever was not sent
    # together with a 429'd request came at least 0.9 s after it.
    times = sorted(r.at for r in got429)
    for pushed_back in [r.at for r in got429[:2]]:
        later = [at for at in times if at > pushed_back + 0.05]
        assert later and all(at >= pushed_back + 0.9 for at in later), times
    time.sleep(0.5)
    for path in ("/503", "/429"):
        delivered = [r.headers["webhook-id"] for r in receiver.received(path)]
        assert set(delivered) == set(msgs)
    # Every delivery succeeded once it could: nothing failed for good, nothing pending.
    assert run_sync(_statuses(database_url)) == {int(MessageStatus.SUCCESS): 6}
    assert svix.endpoint.get(app.id, ep429.id).disabled is False
