"""The traffic commands against a running server, as real subprocesses: the message log (list,
get by id or eventId, expunge, where a message went), the events feed, attempts with the
receiver's answers, one attempt in full, resend, and an endpoint's messages."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import at_least, ok_json, pb
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle

# The CLI talks HTTP; which database is behind the server does not change what it does.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_message_list_get_by_event_id_and_expunge(server: ServerHandle, app_id: str) -> None:
    first = ok_json(server, "send", app_id, "order.paid", '{"n": 1}', "--event-id", "ord-1")
    second = ok_json(server, "send", app_id, "order.shipped", '{"n": 2}', "--tag", "eu")
    listed = ok_json(server, "message", "list", app_id)
    assert [m["id"] for m in listed] == [second["id"], first["id"]]  # newest first
    assert listed[1]["payload"] == {"n": 1}
    only = ok_json(server, "message", "list", app_id, "-e", "order.paid")
    assert [m["id"] for m in only] == [first["id"]]
    assert [m["id"] for m in ok_json(server, "message", "list", app_id, "--tag", "eu")] == [
        second["id"]
    ]
    assert ok_json(server, "message", "list", app_id, "--since", "2030-01-01T00:00:00") == []
    table = pb(server, "message", "list", app_id)
    assert first["id"] in table.stdout and "ord-1" in table.stdout

    by_event_id = ok_json(server, "message", "get", app_id, "ord-1")
    assert by_event_id["id"] == first["id"] and by_event_id["payload"] == {"n": 1}
    shown = pb(server, "message", "get", app_id, first["id"])
    assert shown.returncode == 0 and '"n": 1' in shown.stdout and first["id"] in shown.stdout
    missing = pb(server, "message", "get", app_id, "no-such-event")
    assert missing.returncode == 1 and "(404)" in missing.stderr

    expunged = ok_json(server, "message", "expunge", app_id, "ord-1")
    assert expunged == {"id": "ord-1", "expunged": True}
    assert ok_json(server, "message", "get", app_id, first["id"])["payload"] == {}


def test_message_endpoints_and_endpoint_messages(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    ok_json(server, "endpoint", "create", app_id, receiver.route("/all", ok()), "--uid", "all")
    picky = ok_json(
        server,
        "endpoint",
        "create",
        app_id,
        receiver.route("/p1", ok()),
        "--filter",
        '{"product": "p1"}',
    )
    msg = ok_json(server, "send", app_id, "order.paid", '{"product": "p2"}')["id"]
    receiver.wait_for(1, "/all")

    def settled() -> list[dict] | None:
        rows = ok_json(server, "message", "endpoints", app_id, msg)
        done = [d for d in rows if d["id"] != picky["id"] and d["statusText"] == "success"]
        return rows if len(rows) == 2 and len(done) == 1 else None

    where = {d["id"]: d for d in eventually(settled)}
    assert where[picky["id"]]["note"]  # why it did not go there
    table = pb(server, "message", "endpoints", app_id, msg)
    assert table.returncode == 0 and picky["id"] in table.stdout

    got = eventually(
        lambda: (
            (rows := ok_json(server, "endpoint", "messages", app_id, "all", "--status", "success"))
            and rows
        )
    )
    assert [m["id"] for m in got] == [msg] and got[0]["statusText"] == "success"
    assert ok_json(server, "endpoint", "messages", app_id, "all", "--status", "fail") == []
    text = pb(server, "endpoint", "messages", app_id, "all")
    assert msg in text.stdout and "success" in text.stdout


def test_attempts_show_the_receivers_answer_and_attempt_get(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    answer = "out of stock: sku 4411 " + "x" * 300
    receiver.route("/no", fail(409, answer))
    ep = ok_json(server, "endpoint", "create", app_id, receiver.url + "/no")["id"]
    msg = ok_json(server, "send", app_id, "order.paid", "{}")["id"]
    rows = eventually(lambda: ok_json(server, "attempts", app_id, "--msg", msg))
    assert rows[0]["response"] == answer and rows[0]["responseStatusCode"] == 409

    table = pb(server, "attempts", app_id, "--msg", msg)
    assert table.returncode == 0 and "out of stock: sku 4411" in table.stdout
    assert "x" * 300 not in table.stdout  # cut short in a listing
    failed = eventually(
        lambda: at_least(
            ok_json(server, "attempts", app_id, "--endpoint", ep, "--status", "fail"), 1
        )
    )
    assert all(a["status"] == 2 for a in failed)
    assert ok_json(server, "attempts", app_id, "--endpoint", ep, "--code", "200") == []
    assert len(ok_json(server, "attempts", app_id, "--endpoint", ep, "--code", "400")) >= 1

    attempt = rows[0]["id"]
    full = pb(server, "attempt", "get", app_id, msg, attempt)
    assert full.returncode == 0 and answer in full.stdout and attempt in full.stdout
    assert ok_json(server, "attempt", "get", app_id, msg, attempt)["response"] == answer


def test_resend_sends_again_as_a_manual_attempt(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    ep = ok_json(server, "endpoint", "create", app_id, receiver.route("/again", ok()))["id"]
    msg = ok_json(server, "send", app_id, "order.paid", '{"n": 7}')["id"]
    receiver.wait_for(1, "/again")
    done = pb(server, "resend", app_id, msg, ep)
    assert done.returncode == 0 and f"{msg} queued again for {ep}" in done.stdout
    second = receiver.wait_for(2, "/again")[1]
    assert json.loads(second.body) == {"n": 7} and second.headers["webhook-id"] == msg
    manual = eventually(
        lambda: [
            a for a in ok_json(server, "attempts", app_id, "--msg", msg) if a["triggerType"] == 1
        ]
    )
    assert len(manual) == 1
    assert ok_json(server, "resend", app_id, msg, ep) == {
        "msgId": msg,
        "endpointId": ep,
        "resent": True,
    }
    missing = pb(server, "resend", app_id, "msg_nope", ep)
    assert missing.returncode == 1 and "(404)" in missing.stderr


def test_events_feed_pages_with_a_cursor(server: ServerHandle, app_id: str) -> None:
    sent = [
        ok_json(server, "send", app_id, "order.paid", json.dumps({"n": n}))["id"] for n in range(3)
    ]
    page = ok_json(server, "events", app_id, "--limit", "2")
    assert [m["id"] for m in page["data"]] == sent[:2]  # oldest first
    rest = ok_json(server, "events", app_id, "--after", page["iterator"])
    assert [m["id"] for m in rest["data"]] == sent[2:]
    text = pb(server, "events", app_id, "--limit", "2")
    assert text.returncode == 0 and sent[0] in text.stdout
    assert f"next: --after {page['iterator']}" in text.stdout
    bad = pb(server, "events", app_id, "--after", "not-a-cursor")
    assert bad.returncode == 1 and "(422)" in bad.stderr


def test_message_expunge_erases_the_answers_too_and_keeps_a_tombstone(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    ok_json(server, "endpoint", "create", app_id, receiver.route("/buyer", ok(200, "cpf 123")))
    msg = ok_json(server, "send", app_id, "buyer.updated", '{"cpf": "123"}')["id"]
    rows = eventually(lambda: ok_json(server, "attempts", app_id, "--msg", msg))
    assert rows[0]["response"] == "cpf 123"
    done = pb(server, "message", "expunge", app_id, msg)
    assert done.returncode == 0 and f"content of {msg} erased" in done.stdout
    assert [a["response"] for a in ok_json(server, "attempts", app_id, "--msg", msg)] == [
        "EXPUNGED"
    ]
    assert ok_json(server, "message", "get", app_id, msg)["payload"] == {}
    assert [m["id"] for m in ok_json(server, "message", "list", app_id)] == [msg]
    again = pb(server, "message", "expunge", app_id, msg)  # twice is harmless
    assert again.returncode == 0
    missing = pb(server, "message", "expunge", app_id, "msg_01m8tsjav192grecp5n7r38xj7")
    assert missing.returncode == 1 and "(404)" in missing.stderr
