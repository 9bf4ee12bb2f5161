"""The operational webhook ``endpoint.ordering.blocked`` end to end, on SQLite and
PostgreSQL: an ordered endpoint's key whose head keeps failing past
POSTBACK_ORDERING_BLOCKED_ALERT (here one second) is announced exactly once at the
operator's loopback receiver, signed like every operational webhook, however many
housekeeping rounds follow; a key that is not blocked is not announced."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook

from tests.support.ordering import call
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle

BLOCKED = "endpoint.ordering.blocked"


def _api(server: ServerHandle, method: str, path: str, body: Any = None) -> Any:
    answer = call(server.url, server.token, method, path, body)
    assert answer.status_code < 300, answer.text
    return answer.json()


def test_a_key_blocked_past_the_setting_is_announced_once(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    # Retries a minute apart: the head stays blocked; housekeeping rounds every 0.5 s.
    server = make_server(retry_schedule=(60, 60), ordering_blocked_alert=1.0)
    ops = _api(
        server,
        "POST",
        "/operational-webhook/endpoint",
        {"url": receiver.route("/ops", ok()), "filterTypes": [BLOCKED]},
    )
    secret = _api(server, "GET", f"/operational-webhook/endpoint/{ops['id']}/secret")["key"]
    app = _api(server, "POST", "/app", {"name": "billing", "uid": "billing"})["id"]
    stuck = receiver.route("/stuck", fail(503))
    ep = _api(server, "POST", f"/app/{app}/endpoint", {"url": stuck, "ordered": True})["id"]
    fine = receiver.route("/fine", ok())
    _api(server, "POST", f"/app/{app}/endpoint", {"url": fine, "ordered": True})
    msgs = [
        _api(
            server,
            "POST",
            f"/app/{app}/msg",
            {"eventType": "invoice.paid", "payload": {"n": n}, "orderingKey": "sub_1"},
        )["id"]
        for n in (1, 2)
    ]
    receiver.wait_for(2, "/fine")
    (got,) = receiver.wait_for(1, "/ops", timeout=30)
    Webhook(secret).verify(got.body, got.headers)
    event = orjson.loads(got.body)
    assert event["type"] == BLOCKED
    data = event["data"]
    assert (data["appId"], data["appUid"], data["endpointId"]) == (app, "billing", ep)
    assert (data["orderingKey"], data["msgId"], data["attempts"]) == ("sub_1", msgs[0], 1)
    assert data["blockedSince"]
    time.sleep(3)  # six more rounds of housekeeping: the head is not announced again
    assert len(receiver.received("/ops")) == 1
    assert len(receiver.received("/stuck")) == 1  # the second message still waits
    # The dashboard's panel reads what the last round found.
    shown = eventually(lambda: _dashboard_mentions(server, msgs[0]), 10)
    assert shown


def _dashboard_mentions(server: ServerHandle, msg_id: str) -> bool:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        login = client.get("/dashboard/login")
        csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post("/dashboard/login", data={"csrf": csrf, "token": server.token})
        home = client.get("/dashboard/")
    section = home.text.split('id="ord-h"', 1)[1].split("</section>", 1)[0]
    return msg_id in section
