"""Ordered delivery through the API, end to end on SQLite and PostgreSQL: an endpoint's
``ordered`` reads back through create, PUT and PATCH; a message's ``orderingKey`` is kept
and bounded; a receiver that fails a key's first message three times sees that key's
messages strictly in order while the other key's go out meanwhile; a message the
endpoint's filter turns away does not hold its key."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from tests.support.ordering import EXPECTED, RETRIES, KeyedReceiver, call, check_order, send_keyed
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, fail_then_ok
from tests.support.server import ServerHandle


@pytest.fixture
def receiver() -> Any:
    with Receiver() as r:
        yield r


def _call(server: ServerHandle, method: str, path: str, body: Any = None) -> httpx.Response:
    return call(server.url, server.token, method, path, body)


def _app(server: ServerHandle) -> str:
    return _call(server, "POST", "/app", {"name": "billing"}).json()["id"]


def test_ordered_reads_back_through_create_put_and_patch(server: ServerHandle) -> None:
    app = _app(server)
    made = _call(server, "POST", f"/app/{app}/endpoint", {"url": "http://127.0.0.1:9/h"})
    assert made.json()["ordered"] is False
    ep = made.json()["id"]
    patched = _call(server, "PATCH", f"/app/{app}/endpoint/{ep}", {"ordered": True})
    assert patched.status_code == 200 and patched.json()["ordered"] is True
    assert _call(server, "GET", f"/app/{app}/endpoint/{ep}").json()["ordered"] is True
    kept = _call(server, "PATCH", f"/app/{app}/endpoint/{ep}", {"description": "x"})
    assert kept.json()["ordered"] is True  # PATCH leaves what it does not name
    put = _call(server, "PUT", f"/app/{app}/endpoint/{ep}", {"url": "http://127.0.0.1:9/h"})
    assert put.json()["ordered"] is False  # PUT replaces: unset is unordered
    second = {"url": "http://127.0.0.1:9/h2", "ordered": True}
    assert _call(server, "POST", f"/app/{app}/endpoint", second).json()["ordered"] is True
    wrong = _call(server, "PATCH", f"/app/{app}/endpoint/{ep}", {"ordered": "sometimes"})
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "ordered"]


def test_an_ordering_key_is_kept_and_one_over_256_characters_is_refused(
    server: ServerHandle,
) -> None:
    app = _app(server)
    sent = _call(
        server,
        "POST",
        f"/app/{app}/msg",
        {"eventType": "invoice.paid", "payload": {}, "orderingKey": "sub_1"},
    )
    assert sent.status_code == 202 and sent.json()["orderingKey"] == "sub_1"
    read = _call(server, "GET", f"/app/{app}/msg/{sent.json()['id']}")
    assert read.json()["orderingKey"] == "sub_1"
    plain = _call(server, "POST", f"/app/{app}/msg", {"eventType": "a", "payload": {}})
    assert plain.json()["orderingKey"] is None
    long = {"eventType": "invoice.paid", "payload": {}, "orderingKey": "k" * 257}
    refused = _call(server, "POST", f"/app/{app}/msg", long)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "orderingKey"]


def test_a_failing_head_holds_its_key_in_order_and_not_the_others(
    make_server: Any, receiver: Receiver
) -> None:
    server = make_server(retry_schedule=RETRIES)
    keyed = KeyedReceiver()
    url = receiver.route("/ordered", keyed.behaviour())
    app = _app(server)
    made = _call(server, "POST", f"/app/{app}/endpoint", {"url": url, "ordered": True})
    assert made.status_code == 201
    send_keyed(server.url, server.token, app)
    check_order([r.body for r in receiver.wait_for(EXPECTED, "/ordered")])
    assert keyed.overlaps == []  # one request per key at a time


def test_a_stuck_head_is_listed_retried_now_and_skipped(
    make_server: Any, receiver: Receiver
) -> None:
    # A long retry schedule: without a retry-now the head would not go again for a minute.
    server = make_server(retry_schedule=(60, 60))
    url = receiver.route("/stuck", fail())
    app = _app(server)
    ep = _call(server, "POST", f"/app/{app}/endpoint", {"url": url, "ordered": True}).json()["id"]
    base = f"/app/{app}/endpoint/{ep}/ordering"
    first, _second = (
        _call(server, "POST", f"/app/{app}/msg", {"eventType": "a", "payload": {"n": n}}).json()
        for n in (1, 2)
    )
    receiver.wait_for(1, "/stuck")

    def head_attempts(count: int) -> dict[str, Any] | None:
        (head,) = _call(server, "GET", base).json()["data"]
        return head if head["attempts"] == count else None

    head = eventually(lambda: head_attempts(1), 10)
    assert (head["msgId"], head["orderingKey"], head["statusText"]) == (
        first["id"],
        None,
        "pending",
    )
    summary = _call(server, "GET", f"/app/{app}/endpoint/{ep}").json()["ordering"]
    assert summary["blockedKeys"] == 1 and summary["oldestBlockedSince"] is not None
    retried = _call(server, "POST", f"{base}/retry", {})
    assert retried.status_code == 200, retried.text
    receiver.wait_for(2, "/stuck")  # sent again now, not in a minute
    eventually(lambda: head_attempts(2), 10)
    assert [orjson.loads(r.body)["n"] for r in receiver.received("/stuck")] == [1, 1]
    skipped = _call(server, "POST", f"{base}/skip", {})
    assert skipped.status_code == 200, skipped.text
    assert skipped.json()["note"].startswith("skipped by operator token ")
    got = receiver.wait_for(3, "/stuck")  # the next message is the head now
    assert orjson.loads(got[2].body)["n"] == 2
    dests = _call(server, "GET", f"/app/{app}/msg/{first['id']}/endpoint").json()["data"]
    assert dests[0]["note"] == skipped.json()["note"]  # recorded: who and when
    assert dests[0]["statusText"] == "canceled"
    nothing = _call(server, "POST", f"{base}/skip", {"orderingKey": "other"})
    assert nothing.status_code == 404
    plain = _call(server, "POST", f"/app/{app}/endpoint", {"url": url}).json()["id"]
    assert _call(server, "GET", f"/app/{app}/endpoint/{plain}").json()["ordering"] is None
    refused = _call(server, "POST", f"/app/{app}/endpoint/{plain}/ordering/skip", {})
    assert refused.status_code == 409


def test_a_put_without_ordered_lets_the_queued_deliveries_go_out_unordered(
    make_server: Any, receiver: Receiver
) -> None:
    # The first message fails and would be tried again only in a minute.
    server = make_server(retry_schedule=(60, 60))

    async def first_fails(request: Any, _: int) -> Any:
        n = orjson.loads(await request.read())["n"]
        return web.Response(status=500 if n == 1 else 200)

    url = receiver.route("/put", first_fails)
    app = _app(server)
    ep = _call(server, "POST", f"/app/{app}/endpoint", {"url": url, "ordered": True}).json()["id"]
    for n in (1, 2, 3):
        body = {"eventType": "a", "payload": {"n": n}, "orderingKey": "k"}
        assert _call(server, "POST", f"/app/{app}/msg", body).status_code == 202
    receiver.wait_for(1, "/put")
    base = f"/app/{app}/endpoint/{ep}/ordering"
    eventually(lambda: _call(server, "GET", base).json()["data"][0]["attempts"] == 1, 10)
    assert len(receiver.received("/put")) == 1  # 2 and 3 wait behind the failed head
    # PATCH without ordered keeps it: still held.
    _call(server, "PATCH", f"/app/{app}/endpoint/{ep}", {"description": "billing"})
    put = _call(server, "PUT", f"/app/{app}/endpoint/{ep}", {"url": url})
    assert put.status_code == 200 and put.json()["ordered"] is False
    got = receiver.wait_for(3, "/put", timeout=20)  # not a minute: no longer behind the head
    assert sorted(orjson.loads(r.body)["n"] for r in got[1:]) == [2, 3]
    nothing = _call(server, "GET", base)
    assert nothing.json()["data"] == []  # out of their keys: no heads to show


def test_a_message_the_filter_turns_away_does_not_block_its_key(
    make_server: Any, receiver: Receiver
) -> None:
    """Key K's messages 1 (passes), 2 (filtered out) and 3 (passes): the receiver gets 1
    (failing once, so 2 and 3 wait behind it) then 3; 2 is not sent, for the filter."""
    server = make_server(retry_schedule=RETRIES)
    url = receiver.route("/filtered", fail_then_ok(1))
    app = _app(server)
    body = {"url": url, "ordered": True, "filter": {"pass": True}}
    made = _call(server, "POST", f"/app/{app}/endpoint", body)
    assert made.status_code == 201, made.text
    sent = [
        _call(
            server,
            "POST",
            f"/app/{app}/msg",
            {"eventType": "a", "payload": {"n": n, "pass": n != 2}, "orderingKey": "K"},
        ).json()["id"]
        for n in (1, 2, 3)
    ]
    got = receiver.wait_for(3, "/filtered", timeout=60)
    assert [orjson.loads(r.body)["n"] for r in got] == [1, 1, 3]
    (dest,) = _call(server, "GET", f"/app/{app}/msg/{sent[1]}/endpoint").json()["data"]
    assert dest["statusText"] == "canceled"
    assert dest["reason"]["code"] == "filter" and "pass" in dest["note"]
    for n in (0, 2):
        (done,) = _call(server, "GET", f"/app/{app}/msg/{sent[n]}/endpoint").json()["data"]
        assert done["statusText"] == "success"
