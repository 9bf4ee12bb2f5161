"""Payload filters, projections and schema validation through the API, delivered to real
receivers, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def api(server: ServerHandle) -> httpx.Client:
    return httpx.Client(
        base_url=server.url + "/api/v1",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )


def purchase(price: float, country: str, product: int = 42) -> dict[str, Any]:
    return {
        "event": "purchase.approved",
        "data": {
            "product": {"id": product, "name": "Course"},
            "buyer": {"email": "ana@example.com", "country": country},
            "purchase": {"price": {"value": price, "currency": "MXN"}},
        },
    }


def send(client: httpx.Client, app: str, payload: dict[str, Any], **extra: Any) -> str:
    body = {"eventType": "purchase.approved", "payload": payload, **extra}
    r = client.post(f"/app/{app}/msg/", json=body)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def new_app(client: httpx.Client) -> str:
    return client.post("/app/", json={"name": "Shop"}).json()["id"]


def test_filters_choose_endpoints_and_destinations_say_why(
    server: ServerHandle, receiver: Receiver
) -> None:
    client = api(server)
    app = new_app(client)
    rules = {
        "/big": {"data.purchase.price.value": {"$gte": 100}},
        "/mx-or-co": {"$or": [{"data.buyer.country": "MX"}, {"data.buyer.country": "CO"}]},
        "/all": None,
    }
    ids = {}
    for path, rule in rules.items():
        body = {"url": receiver.route(path, ok()), "filter": rule}
        r = client.post(f"/app/{app}/endpoint/", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["filter"] == rule
        ids[path] = r.json()["id"]
    small_mx = send(client, app, purchase(50, "MX"))
    big_br = send(client, app, purchase(150, "BR"))

    assert len(receiver.wait_for(2, "/all")) == 2
    (big,) = receiver.wait_for(1, "/big")
    (mx,) = receiver.wait_for(1, "/mx-or-co")
    assert big.headers["webhook-id"] == big_br and mx.headers["webhook-id"] == small_mx
    time.sleep(0.3)  # nothing else arrives: the filtered deliveries were never queued
    assert len(receiver.received("/big")) == 1 and len(receiver.received("/mx-or-co")) == 1

    dests = client.get(f"/app/{app}/msg/{small_mx}/endpoint/").json()["data"]
    by_id = {d["id"]: d for d in dests}
    skipped = by_id[ids["/big"]]
    assert skipped["statusText"] == "canceled"
    assert skipped["note"] == "data.purchase.price.value $gte 100 did not hold"
    assert by_id[ids["/all"]]["note"] is None
    # A manual resend is the customer's own choice: it goes out whatever the filter says.
    r = client.post(f"/app/{app}/msg/{small_mx}/endpoint/{ids['/big']}/resend/")
    assert r.status_code == 202, r.text
    receiver.wait_for(2, "/big")


def test_bad_filters_and_projections_are_422_naming_the_place(server: ServerHandle) -> None:
    client = api(server)
    app = new_app(client)
    cases = [
        ({"filter": {"data.price": {"$gt": [1]}}}, "filter", "data.price.$gt: $gt takes"),
        ({"filter": {"$regex": "x"}}, "filter", "$regex: unknown operator"),
        ({"projection": {"exclude": ["data/buyer"]}}, "projection", "exclude.0: a JSON pointer"),
        ({"projection": {"keep": ["/a"]}}, "projection", "include"),
    ]
    for extra, field, words in cases:
        body = {"url": "https://example.com/hook", **extra}
        r = client.post(f"/app/{app}/endpoint/", json=body)
        assert r.status_code == 422, r.text
        (problem,) = r.json()["detail"]
        assert problem["loc"] == ["body", field]
        assert words in problem["msg"], problem
    ep = client.post(f"/app/{app}/endpoint/", json={"url": "https://example.com/h"}).json()
    r = client.patch(f"/app/{app}/endpoint/{ep['id']}/", json={"filter": {"a": {"$in": 3}}})
    assert r.status_code == 422
    r = client.patch(f"/app/{app}/endpoint/{ep['id']}/", json={"filter": {"a": 1}})
    assert r.status_code == 200 and r.json()["filter"] == {"a": 1}
    r = client.patch(f"/app/{app}/endpoint/{ep['id']}/", json={"filter": None})
    assert r.status_code == 200 and r.json()["filter"] is None


def test_projection_is_what_is_signed_sent_and_resent(
    server: ServerHandle, receiver: Receiver
) -> None:
    client = api(server)
    app = new_app(client)
    affiliate = client.post(
        f"/app/{app}/endpoint/",
        json={
            "url": receiver.route("/affiliate", ok()),
            "projection": {"exclude": ["/data/buyer"]},
        },
    ).json()
    summary = client.post(
        f"/app/{app}/endpoint/",
        json={
            "url": receiver.route("/summary", ok()),
            "projection": {"include": ["/event", "/data/product/id"]},
        },
    ).json()
    client.post(f"/app/{app}/endpoint/", json={"url": receiver.route("/producer", ok())})
    payload = purchase(99.5, "MX")
    msg = send(client, app, payload)

    (full,) = receiver.wait_for(1, "/producer")
    (cut,) = receiver.wait_for(1, "/affiliate")
    (small,) = receiver.wait_for(1, "/summary")
    assert orjson.loads(full.body) == payload
    assert orjson.loads(cut.body) == {
        "event": "purchase.approved",
        "data": {k: v for k, v in payload["data"].items() if k != "buyer"},
    }
    assert orjson.loads(small.body) == {
        "event": "purchase.approved",
        "data": {"product": {"id": 42}},
    }
    # Each receiver verifies the signature over the body it got, not over the message.
    for got, ep in ((cut, affiliate), (small, summary)):
        secret = client.get(f"/app/{app}/endpoint/{ep['id']}/secret/").json()["key"]
        assert Webhook(secret).verify(got.body, got.headers) == orjson.loads(got.body)
    # A resend sends the same projected body again.
    r = client.post(f"/app/{app}/msg/{msg}/endpoint/{affiliate['id']}/resend/")
    assert r.status_code == 202
    first, again = receiver.wait_for(2, "/affiliate")
    assert again.body == first.body and b"ana@example.com" not in again.body


SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "object",
            "required": ["purchase"],
            "properties": {
                "purchase": {
                    "type": "object",
                    "properties": {
                        "price": {
                            "type": "object",
                            "properties": {"value": {"type": "number", "minimum": 0}},
                        }
                    },
                }
            },
        }
    },
}


def test_payloads_are_validated_when_the_event_type_asks(server: ServerHandle) -> None:
    client = api(server)
    app = new_app(client)
    r = client.post(
        "/event-type/",
        json={"name": "purchase.approved", "schemas": {"1": SCHEMA}, "validatePayloads": True},
    )
    assert r.status_code == 201 and r.json()["validatePayloads"] is True
    send(client, app, purchase(10, "MX"))
    r = client.post(
        f"/app/{app}/msg/",
        json={"eventType": "purchase.approved", "payload": purchase(-5, "MX")},
    )
    assert r.status_code == 422
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "payload", "data", "purchase", "price", "value"]
    assert "minimum" in problem["msg"] and "properties/data" in problem["msg"]
    r = client.post(f"/app/{app}/msg/", json={"eventType": "purchase.approved", "payload": {}})
    assert r.status_code == 422 and "data" in r.json()["detail"][0]["msg"]
    # Switched off: the same payload goes through at once (this process dropped its cache).
    client.patch("/event-type/purchase.approved/", json={"validatePayloads": False})
    send(client, app, purchase(-5, "MX"))
    # Not a JSON Schema: refused when saved.
    r = client.post(
        "/event-type/", json={"name": "bad.schema", "schemas": {"1": {"type": "nonsense"}}}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "schemas"]


def test_the_server_switch_validates_every_event_type_with_a_schema(
    make_server: Callable[..., ServerHandle],
) -> None:
    server = make_server(validate_payloads=True)
    client = api(server)
    app = new_app(client)
    client.post("/event-type/", json={"name": "purchase.approved", "schemas": {"1": SCHEMA}})
    client.post(
        "/event-type/",
        json={"name": "purchase.refunded", "schemas": {"1": SCHEMA}, "validatePayloads": False},
    )
    r = client.post(f"/app/{app}/msg/", json={"eventType": "purchase.approved", "payload": {}})
    assert r.status_code == 422
    for event_type in ("purchase.refunded", "no.schema.here"):  # opted out; nothing to check
        r = client.post(f"/app/{app}/msg/", json={"eventType": event_type, "payload": {}})
        assert r.status_code == 202, r.text
