"""The events feed on a busy, shared PostgreSQL: transactions open in another database, a
long reader and a session idle in transaction in the same one do not hold it back; a
writer that commits late does, is never skipped, and `postback check` and the dashboard
say which session it is and what it waits for."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from postback import ids
from postback.store.store import Store
from postback.web import dashboard
from tests.api.test_events import _message
from tests.support.pg_sessions import below_old_horizon, open_transaction, other_database
from tests.support.polling import eventually_async
from tests.support.procs import POSTBACK, env_for
from tests.support.server import SECRET_BOX, ServerHandle
from tests.web.test_web_http import dashboard_client

PG = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
SRC = str(Path(__file__).resolve().parents[2] / "src")  # this tree's code in subprocesses
# Seconds: a new message is in the feed and on the stream within this. A frozen feed never
# shows it; the bound is wide because the machine may be busy (the first message on a fresh
# server also pays for warming its connections).
LIVE = 5.0


def _client(server: ServerHandle) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {server.token}"}
    return httpx.AsyncClient(base_url=server.url + "/api/v1", headers=headers, timeout=10)


async def _send(client: httpx.AsyncClient, app: str, n: int) -> str:
    r = await client.post(f"/app/{app}/msg/", json={"eventType": "e", "payload": {"n": n}})
    assert r.status_code == 202, r.text
    return r.json()["id"]


async def _next_event(lines: AsyncIterator[str]) -> dict[str, Any]:
    event: dict[str, Any] = {}
    async for line in lines:
        if line.startswith("id: "):
            event["id"] = line[4:]
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif line == "" and "data" in event:
            return event
    raise AssertionError("stream ended")


@PG
async def test_feed_and_stream_stay_live_beside_open_transactions(
    server: ServerHandle, pg_admin_url: str
) -> None:
    here = server.settings.database_url
    async with (
        other_database(pg_admin_url) as neighbour,
        open_transaction(neighbour) as far,
        open_transaction(here, reads="messages") as reader,
        open_transaction(here) as idle,
        _client(server) as client,
    ):
        # Each of them alone froze the old feed (it waited for pg_snapshot_xmin).
        for held in (far, reader, idle):
            assert await below_old_horizon(here, held.xid)
        app = (await client.post("/app/", json={"name": "Busy server"})).json()["id"]
        sent, feed, lags, cursor = [], [], [], None
        for n in range(5):
            started = time.monotonic()
            sent.append(await _send(client, app, n))
            while sent[-1] not in feed and time.monotonic() - started < 2 * LIVE:
                query = {"after": cursor} if cursor else {}
                body = (await client.get(f"/app/{app}/events/", params=query)).json()
                feed += [m["id"] for m in body["data"]]
                cursor = body["iterator"]
                await asyncio.sleep(0.02)
            lags.append(time.monotonic() - started)
        assert feed == sent  # in order, none skipped, none twice
        assert max(lags) < LIVE, lags
        streamed, stream_lags = [], []
        url = f"/app/{app}/events/stream"
        async with client.stream("GET", url, params={"after": cursor}) as response:
            lines = response.aiter_lines()
            for n in range(5):
                started = time.monotonic()
                sent.append(await _send(client, app, n))
                event = await asyncio.wait_for(_next_event(lines), 2 * LIVE)
                stream_lags.append(time.monotonic() - started)
                streamed.append(event["data"]["id"])
        assert streamed == sent[5:]
        assert max(stream_lags) < LIVE, stream_lags
        for held in (far, reader, idle):  # open all along, with their ids
            assert await held.conn.fetchval("SELECT txid_current()") == held.xid


async def _poll_until(store: Store, app_id: str, count: int) -> list[str]:
    feed: list[str] = []
    cursor = None

    async def enough() -> bool:
        nonlocal cursor
        rows, cursor = await store.poll_events(app_id, cursor, 100)
        feed.extend(r["id"] for r in rows)
        return len(feed) >= count

    await eventually_async(enough, interval=0.02, what=f"{count} messages in the feed")
    return feed


@PG
async def test_a_batch_that_commits_late_holds_the_feed_back_and_is_never_skipped(
    store: Store, database_url: str, pg_admin_url: str
) -> None:
    """Batch A (ingest's one statement) has its transaction id, then waits for a lock;
    message B, written by another process, commits meanwhile. B must wait in the feed until
    A commits, then come after it; check's data names A's session and what holds it."""
    app = await store.create_app({"name": "Late batch"})
    other = Store.connect(database_url, secret_box=SECRET_BOX)  # another API process
    async with other_database(pg_admin_url) as neighbour, open_transaction(neighbour):
        blocker = await asyncpg.connect(database_url)
        try:
            await blocker.execute("BEGIN")
            blocking_id = ids.new_id(ids.MESSAGE)
            await blocker.execute(
                "INSERT INTO messages (id, app_id, event_type, event_id, created_at)"
                " VALUES ($1, $2, 'e', 'dup', now())",
                blocking_id,
                app["id"],
            )
            # The eventId's claim, as ingest makes it: A's claim of it waits for this one.
            await blocker.execute(
                "INSERT INTO message_event_ids (app_id, event_id, msg_id) VALUES ($1, 'dup', $2)",
                app["id"],
                blocking_id,
            )
            blocking_xid = await blocker.fetchval("SELECT txid_current()")
            values = {"event_type": "e", "payload": b'{"m":"A"}', "event_id": "dup"}
            late = asyncio.create_task(store.create_message(app["id"], values))

            async def a_waits() -> bool:  # A's ON CONFLICT waits for the blocker's row
                waiting = (
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    " AND locktype = 'transactionid' AND transactionid::text::bigint = $1"
                )
                return bool(await blocker.fetchval(waiting, blocking_xid & 0xFFFFFFFF))

            await eventually_async(a_waits)
            b, _ = await other.create_message(app["id"], {"event_type": "e", "payload": b"{}"})
            health = await store.feed_health(held_after=0.0)
            (writer,) = health["writers"]
            assert health["held_back"] and writer["wait_event"] == "transactionid"
            assert [b["pid"] for b in writer["blocked_by"]] == [blocker.get_server_pid()]
            assert writer["blocked_by"][0]["state"] == "idle in transaction"
            rows, cursor = await store.poll_events(app["id"], None, 10)
            assert rows == [] and cursor is None  # B is behind A, which has not committed
        finally:
            await blocker.close()  # rolled back: A goes ahead
            await other.close()
        a, created = await asyncio.wait_for(late, 10)
        assert created
        assert await _poll_until(store, app["id"], 2) == [a["id"], b["id"]]
    assert (await store.feed_health(held_after=0.0))["held_back"] is False


def _check(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = SRC + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = env_for(database_url) | {"PYTHONPATH": path}
    return subprocess.run(
        [*POSTBACK, "check", *args], env=env, capture_output=True, text=True, timeout=60
    )


@PG
async def test_check_names_the_writer_that_holds_the_feed_back(
    store: Store, database_url: str
) -> None:
    app = await store.create_app({"name": "Held"})
    async with store.engine.begin() as conn:  # a writer whose commit is late
        await store._insert_message(conn, _message(store, app["id"], "late"))
        pid = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
        await asyncio.sleep(0.3)
        held = await asyncio.to_thread(_check, database_url, "--json", "--feed-held-after", "0.2")
        text = await asyncio.to_thread(_check, database_url, "--feed-held-after", "0.2")
        relaxed = await asyncio.to_thread(_check, database_url, "--json", "--feed-held-after", "60")
    assert held.returncode == 1, held.stderr
    report = json.loads(held.stdout)
    assert report["healthy"] is False and report["due"] == 0  # the queue's part stays
    assert report["feed"]["held_back"] is True and report["feed"]["held_seconds"] > 0.2
    (writer,) = report["feed"]["writers"]
    assert writer["pid"] == pid and writer["state"] == "idle in transaction"
    assert text.returncode == 1 and "HELD BACK" in text.stdout and f"pid {pid} " in text.stdout
    assert relaxed.returncode == 0 and json.loads(relaxed.stdout)["feed"]["held_back"] is False
    done = await asyncio.to_thread(_check, database_url, "--feed-held-after", "0")
    assert done.returncode == 0 and "events feed is live" in done.stdout


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_the_dashboard_health_tile_shows_the_feed(
    server: ServerHandle, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tile() -> str:
        home = dashboard_client(server).get("/dashboard/").text
        return home.split('id="feed-health">')[1].split("</dd>")[0]

    assert "Live" in await asyncio.to_thread(tile)
    if database_url.startswith("sqlite"):
        return  # one writer at a time: nothing holds the feed back
    store = Store.connect(database_url, secret_box=SECRET_BOX)
    try:
        app = await store.create_app({"name": "Held on the dashboard"})
        async with store.engine.begin() as conn:
            await store._insert_message(conn, _message(store, app["id"], "late"))
            pid = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
            monkeypatch.setattr(dashboard, "FEED_HELD_AFTER", 0.1)
            await asyncio.sleep(0.2)
            shown = await asyncio.to_thread(tile)
    finally:
        await store.close()
    assert "Held back" in shown and f"pid {pid} " in shown and "idle in transaction" in shown


@PG
async def test_a_writer_that_already_has_a_transaction_id_is_refused(store: Store) -> None:
    """Registered after its id, a writer could commit below a cursor already handed out:
    the general path refuses rather than let the feed skip its message."""
    app = await store.create_app({"name": "Too late"})
    with pytest.raises(RuntimeError, match="already has an id"):
        async with store.engine.begin() as conn:
            await conn.execute(sa.text("SELECT pg_current_xact_id()"))
            await store._insert_message(conn, _message(store, app["id"], "x"))
    rows, _ = await store.poll_events(app["id"], None, 10)
    assert rows == []
