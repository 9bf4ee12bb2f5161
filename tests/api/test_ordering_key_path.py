"""An event type's ``orderingKeyPath`` through the API, on SQLite and PostgreSQL: it reads
back through create, PATCH and GET, a bad path is refused; a message sent without
``orderingKey`` takes the string or whole number found there (nothing there: no key, a
message's own ``orderingKey`` wins), one over 256 characters is a 422 naming the payload's
field; and an ordered endpoint orders by the key so found."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.support.ordering import call
from tests.support.receivers import Receiver, fail_then_ok
from tests.support.server import ServerHandle

PATH = "data.subscription.id"


def _call(server: ServerHandle, method: str, path: str, body: Any = None) -> httpx.Response:
    return call(server.url, server.token, method, path, body)


def _send(server: ServerHandle, app: str, payload: Any, **extra: Any) -> httpx.Response:
    body = {"eventType": "subscription.updated", "payload": payload, **extra}
    return _call(server, "POST", f"/app/{app}/msg", body)


def _sub(value: Any, n: int = 0) -> dict[str, Any]:
    return {"data": {"subscription": {"id": value}, "n": n}}


def test_the_ordering_key_path_is_kept_and_checked(server: ServerHandle) -> None:
    made = _call(server, "POST", "/event-type", {"name": "subscription.updated"})
    assert made.json()["orderingKeyPath"] is None
    patched = _call(server, "PATCH", "/event-type/subscription.updated", {"orderingKeyPath": PATH})
    assert patched.status_code == 200 and patched.json()["orderingKeyPath"] == PATH
    assert (
        _call(server, "GET", "/event-type/subscription.updated").json()["orderingKeyPath"] == PATH
    )
    bad = _call(server, "POST", "/event-type", {"name": "x.y", "orderingKeyPath": "data..id"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "orderingKeyPath"]


def test_a_message_takes_its_key_from_the_payload(server: ServerHandle) -> None:
    _call(server, "POST", "/event-type", {"name": "subscription.updated", "orderingKeyPath": PATH})
    app = _call(server, "POST", "/app", {"name": "billing"}).json()["id"]
    assert _send(server, app, _sub("sub_1")).json()["orderingKey"] == "sub_1"
    assert _send(server, app, _sub(42)).json()["orderingKey"] == "42"
    assert _send(server, app, {"data": {}}).json()["orderingKey"] is None  # no path: no key
    assert _send(server, app, _sub(True)).json()["orderingKey"] is None  # not a key's kind
    assert _send(server, app, _sub({"a": 1})).json()["orderingKey"] is None
    own = _send(server, app, _sub("sub_1"), orderingKey="mine")
    assert own.json()["orderingKey"] == "mine"  # the message's own key wins
    read = _call(server, "GET", f"/app/{app}/msg/{own.json()['id']}").json()
    assert read["orderingKey"] == "mine"
    other = _call(server, "POST", f"/app/{app}/msg", {"eventType": "other", "payload": _sub("s")})
    assert other.json()["orderingKey"] is None  # another event type has no path
    long = _send(server, app, _sub("k" * 257))
    assert long.status_code == 422
    (problem,) = long.json()["detail"]
    assert problem["loc"] == ["body", "payload", "data", "subscription", "id"]
    assert "256" in problem["msg"] and PATH in problem["msg"]
    assert _send(server, app, _sub("k" * 256)).status_code == 202


def test_an_ordered_endpoint_orders_by_the_key_in_the_payload(
    make_server: Any, receiver: Receiver
) -> None:
    server = make_server(retry_schedule=(0.3, 0.3, 0.3))
    _call(server, "POST", "/event-type", {"name": "subscription.updated", "orderingKeyPath": PATH})
    app = _call(server, "POST", "/app", {"name": "billing"}).json()["id"]
    url = receiver.route("/ordered", fail_then_ok(2))  # the first request fails twice
    _call(server, "POST", f"/app/{app}/endpoint", {"url": url, "ordered": True})
    for n in (1, 2, 3):
        assert _send(server, app, _sub("sub_1", n)).status_code == 202
    got = receiver.wait_for(5, "/ordered")
    assert [orjson.loads(r.body)["data"]["n"] for r in got] == [1, 1, 1, 2, 3]
