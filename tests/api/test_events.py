"""The events feed (polling and Server-Sent Events), on SQLite and PostgreSQL, including
writers in other processes whose commits land out of creation order."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from postback.store.store import Store
from tests.support.databases import own_cluster
from tests.support.polling import eventually_async
from tests.support.server import ServerHandle, server_settings


def api(server: ServerHandle, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.url + "/api/v1",
        headers={"Authorization": f"Bearer {token or server.token}"},
        timeout=10,
    )


def send(client: httpx.Client, app: str, n: int, event_type: str = "invoice.paid") -> list[str]:
    ids = []
    for i in range(n):
        r = client.post(f"/app/{app}/msg/", json={"eventType": event_type, "payload": {"n": i}})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    return ids


def poll_all(client: httpx.Client, app: str, cursor: str | None = None, **params: Any) -> Any:
    seen, pages = [], 0
    while True:
        query = {"limit": 3, **params} | ({"after": cursor} if cursor else {})
        r = client.get(f"/app/{app}/events/", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["data"]
        cursor, pages = body["iterator"], pages + 1
        if body["done"]:
            return seen, cursor, pages


def test_polling_pages_through_in_order_and_resumes(server: ServerHandle) -> None:
    client = api(server)
    app = client.post("/app/", json={"name": "Billing"}).json()["id"]
    other = client.post("/app/", json={"name": "Other"}).json()["id"]
    sent = send(client, app, 7)
    send(client, other, 2)
    seen, cursor, pages = poll_all(client, app)
    assert [m["id"] for m in seen] == sent and pages == 3
    assert seen[0]["payload"] == {"n": 0} and seen[-1]["cursor"] == cursor
    # Nothing new: the same cursor comes back, and then exactly what came after it.
    again = client.get(f"/app/{app}/events/", params={"after": cursor}).json()
    assert again == {"data": [], "iterator": cursor, "prevIterator": None, "done": True}
    later = send(client, app, 2) + send(client, app, 1, "invoice.created")
    seen, _, _ = poll_all(client, app, cursor)
    assert [m["id"] for m in seen] == later
    only, _, _ = poll_all(client, app, None, event_types="invoice.created")
    assert [m["id"] for m in only] == later[-1:]
    # Svix's ``iterator`` works as the cursor too.
    first = client.get(f"/app/{app}/events/", params={"limit": 1}).json()
    nxt = client.get(f"/app/{app}/events/", params={"limit": 1, "iterator": first["iterator"]})
    assert nxt.json()["data"][0]["id"] == sent[1]


def test_bad_cursors_and_other_tenants(server: ServerHandle) -> None:
    client = api(server)
    app = client.post("/app/", json={"name": "Mine"}).json()["id"]
    other = client.post("/app/", json={"name": "Theirs"}).json()["id"]
    for bad in ("abc", "1-", "-1-2", "1-2-3"):
        r = client.get(f"/app/{app}/events/", params={"after": bad})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "after"]
    r = client.get(f"/app/{app}/events/stream", headers={"Last-Event-ID": "nope"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["header", "last-event-id"]
    token = client.post(f"/auth/app-portal-access/{app}/", json={}).json()["token"]
    portal = api(server, token)
    send(client, app, 1)
    assert len(portal.get(f"/app/{app}/events/").json()["data"]) == 1
    assert portal.get(f"/app/{other}/events/").status_code == 404
    assert portal.get(f"/app/{other}/events/stream").status_code == 404
    assert httpx.get(f"{server.url}/api/v1/app/{app}/events/").status_code == 401


def read_events(lines: Iterator[str], count: int, timeout: float = 10) -> list[dict]:
    """The next ``count`` SSE events (id and data) from a stream's lines."""
    events: list[dict] = []
    current: dict = {}
    deadline = time.monotonic() + timeout
    for line in lines:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(events)} events in {timeout} s")
        if line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("data: "):
            current["data"] = httpx.Response(200, content=line[6:]).json()
        elif line == "" and "data" in current:
            events.append(current)
            current = {}
            if len(events) == count:
                return events
    raise AssertionError("stream ended")


def test_live_stream_resumes_from_last_event_id(server: ServerHandle) -> None:
    client = api(server)
    app = client.post("/app/", json={"name": "Live"}).json()["id"]
    first = send(client, app, 3)
    with client.stream("GET", f"/app/{app}/events/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_events(response.iter_lines(), 3)
    assert [e["data"]["id"] for e in events] == first
    # Disconnected; more happen meanwhile; reconnecting with the last id misses nothing.
    more = send(client, app, 4)
    headers = {"Last-Event-ID": events[-1]["id"]}
    with client.stream("GET", f"/app/{app}/events/stream", headers=headers) as response:
        lines = response.iter_lines()
        resumed = read_events(lines, 4)
        assert [e["data"]["id"] for e in resumed] == more
        # Still open: a message sent now arrives on the same stream.
        (live,) = send(client, app, 1)
        (pushed,) = read_events(lines, 1)
        assert pushed["data"]["id"] == live and pushed["data"]["payload"] == {"n": 0}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_late_commit_is_never_skipped(store: Store, pg_admin_url: str) -> None:
    """Message A is written first but commits last; B commits in between. A poller that
    saw B must still get A afterwards (ordering by id alone would lose it). Beside them, a
    transaction held open in another database, as on a shared server: it must not matter."""
    from tests.support.pg_sessions import open_transaction, other_database

    app = await store.create_app({"name": "Race"})
    feed: list[str] = []
    cursor = None

    async def poll() -> None:
        nonlocal cursor
        rows, cursor = await store.poll_events(app["id"], cursor, 100)
        feed.extend(r["id"] for r in rows)

    held = asyncio.Event()
    release = asyncio.Event()

    async def slow_writer() -> str:
        async with store.engine.begin() as conn:
            row = _message(store, app["id"], "A")
            await store._insert_message(conn, row)
            held.set()
            await release.wait()
        return row["id"]

    async with other_database(pg_admin_url) as neighbour, open_transaction(neighbour):
        writer = asyncio.create_task(slow_writer())
        await held.wait()
        b, _ = await store.create_message(app["id"], {"event_type": "e", "payload": b'{"m":"B"}'})
        for _ in range(3):
            await poll()
        assert feed == []  # B waits behind the open transaction that wrote A
        release.set()
        a = await writer

        async def both() -> bool:
            await poll()
            return len(feed) >= 2

        await eventually_async(both, interval=0.01, what="A and B in the feed")
    assert feed == [a, b["id"]]


def _message(store: Store, app_id: str, tag: str) -> dict[str, Any]:
    from datetime import timedelta

    from postback import ids

    now = store.clock()
    return {
        "id": ids.new_id(ids.MESSAGE),
        "app_id": app_id,
        "event_type": "e",
        "event_id": None,
        "payload": b'{"m":"%s"}' % tag.encode(),
        "channels": None,
        "tags": None,
        "created_at": now,
        "deliver_at": None,
        "expunge_at": now + timedelta(days=1),
    }


WRITER = textwrap.dedent(
    """
    import asyncio, random, sys
    from postback.store.store import Store
    from tests.api.test_events import _message

    async def main(url, app_id, count, seed):
        rng = random.Random(seed)
        store = Store.connect(url)
        try:
            for i in range(count):
                async with store.engine.begin() as conn:
                    await store._insert_message(conn, _message(store, app_id, f"{seed}-{i}"))
                    # Hold the transaction a little: commits land out of creation order.
                    await asyncio.sleep(rng.random() * 0.01)
        finally:
            await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    """
)


async def test_concurrent_writers_while_polling_every_message_once_in_order(
    store: Store, database_url: str
) -> None:
    app = await store.create_app({"name": "Busy"})
    writers, per_writer = 4, 120
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, database_url, app["id"], str(per_writer), str(seed)
        )
        for seed in range(writers)
    ]
    feed: list[dict[str, Any]] = []
    cursor = None
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            running = any(p.returncode is None for p in procs)
            rows, cursor = await store.poll_events(app["id"], cursor, 25)
            feed.extend(rows)
            if not rows and not running:
                break
            if not rows:
                await asyncio.sleep(0.005)
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
    assert [await asyncio.wait_for(p.wait(), 10) for p in procs] == [0] * writers
    ids = [r["id"] for r in feed]
    assert len(ids) == len(set(ids)) == writers * per_writer
    positions = [(r["tx"], r["seq"]) for r in feed]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # Each writer's own messages arrive in the order it wrote them.
    for seed in range(writers):
        mine = [r["payload"] for r in feed if r["payload"].startswith(b'{"m":"%d-' % seed)]
        assert mine == [b'{"m":"%d-%d"}' % (seed, i) for i in range(per_writer)]


def test_live_stream_survives_a_database_restart() -> None:
    """PostgreSQL stops and starts again while a client is streaming: the stream stays open
    through the outage and goes on from its cursor."""
    from pgserver._commands import pg_ctl

    # A cluster this test owns, so stopping it disturbs nothing else.
    with own_cluster("postback-ssepg-") as cluster:
        as_owner = {"pgdata": cluster.pgdata, "user": cluster.system_user}
        server = ServerHandle(server_settings(cluster.get_uri())).start()
        try:
            client = api(server)
            app = client.post("/app/", json={"name": "Outage"}).json()["id"]
            (first,) = send(client, app, 1)
            with client.stream("GET", f"/app/{app}/events/stream") as response:
                lines = response.iter_lines()
                assert read_events(lines, 1)[0]["data"]["id"] == first
                pg_ctl(["-w", "-m", "fast", "stop"], **as_owner)
                time.sleep(1.5)  # the stream polls into the outage several times
                pg_ctl(["-w", "restart"], **as_owner)
                later = None
                for _ in range(40):  # the API's pooled connections died too: 503, then fine
                    r = client.post(f"/app/{app}/msg/", json={"eventType": "e", "payload": {}})
                    if r.status_code == 202:
                        later = r.json()["id"]
                        break
                    assert r.status_code == 503, r.text
                    time.sleep(0.1)
                assert later is not None
                assert read_events(lines, 1)[0]["data"]["id"] == later
        finally:
            server.stop()
