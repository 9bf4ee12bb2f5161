"""Product restriction that needs nothing of the sender (the event type's productPath), the
message's endpoint list with the reason for each endpoint it did not go to, the strict
catalog, a reused eventId sent with another message, and the svix SDK 1.x field names."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from svix.api import ApplicationIn, EndpointIn, MessageIn

from postback.api.optins import RETURN_EXISTING
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _api(server: ServerHandle) -> httpx.Client:
    auth = {"authorization": f"Bearer {server.token}"}
    return httpx.Client(base_url=server.url + "/api/v1", headers=auth, timeout=30)


def _purchase(product_id: object) -> dict:
    return {"id": "p-1", "data": {"product": {"id": product_id, "name": "Course"}}}


def test_one_product_endpoints_get_their_product_from_the_payload(
    server: ServerHandle, receiver: Receiver
) -> None:
    api, svix = _api(server), server.svix()
    made = api.post(
        "/event-type", json={"name": "purchase.approved", "productPath": "data.product.id"}
    )
    assert made.status_code == 201 and made.json()["productPath"] == "data.product.id"
    app = svix.application.create(ApplicationIn(name="shop")).id
    every = svix.endpoint.create(app, EndpointIn(url=receiver.route("/all", ok()))).id
    one = api.post(
        f"/app/{app}/endpoint", json={"url": receiver.route("/one", ok()), "product": "213344"}
    ).json()
    assert one["product"] == "213344"
    other = api.post(
        f"/app/{app}/endpoint", json={"url": receiver.route("/other", ok()), "product": "999"}
    ).json()

    # The sender sends no channels: the product id (a number in the payload) routes it.
    msg = svix.message.create(
        app, MessageIn(event_type="purchase.approved", payload=_purchase(213344))
    )
    receiver.wait_for(1, "/one")
    receiver.wait_for(1, "/all")
    assert receiver.received("/other") == []

    # Every endpoint is listed, the one it did not go to with the reason.
    listed = svix.message_attempt.list_attempted_destinations(app, msg.id).data
    assert {d.id for d in listed} == {every, one["id"], other["id"]}
    raw = {d["id"]: d for d in api.get(f"/app/{app}/msg/{msg.id}/endpoint").json()["data"]}
    assert raw[other["id"]]["status"] == 4 and raw[other["id"]]["statusText"] == "canceled"
    assert raw[other["id"]]["reason"] == {"code": "product", "product": "999", "found": "213344"}
    assert "product 213344" in raw[other["id"]]["note"]
    assert raw[one["id"]]["reason"] is None and raw[one["id"]]["status"] in (0, 1, 3)

    # An event type without a productPath: the product may still come as a channel.
    svix.message.create(app, MessageIn(event_type="other.event", payload={}, channels=["999"]))
    receiver.wait_for(1, "/other")


@SQLITE
def test_bad_product_paths_and_products_are_422(server: ServerHandle) -> None:
    api = _api(server)
    bad = api.post("/event-type", json={"name": "a.b", "productPath": "data..id"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "productPath"]
    app = server.svix().application.create(ApplicationIn(name="shop")).id
    wrong = api.post(f"/app/{app}/endpoint", json={"url": "https://a.example/", "product": "a/b"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "product"]


@SQLITE
def test_a_strict_catalog_refuses_unknown_event_types_naming_the_closest(
    make_server: Callable[..., ServerHandle],
) -> None:
    loose = make_server()
    strict = make_server(strict_catalog=True)
    for server in (loose, strict):
        _api(server).post("/event-type", json={"name": "purchase.approved"})
    for server, refused in ((loose, False), (strict, True)):
        api = _api(server)
        app = server.svix().application.create(ApplicationIn(name="shop")).id
        typo = api.post(f"/app/{app}/msg", json={"eventType": "purchase.aproved", "payload": {}})
        endpoint = api.post(
            f"/app/{app}/endpoint",
            json={
                "url": "https://a.example/",
                "filterTypes": ["purchase.approved", "purchase.aproved"],
            },
        )
        if not refused:
            assert (typo.status_code, endpoint.status_code) == (202, 201)
            continue
        assert typo.status_code == 422
        (problem,) = typo.json()["detail"]
        assert problem["loc"] == ["body", "eventType"]
        assert "'purchase.aproved'" in problem["msg"] and "'purchase.approved'" in problem["msg"]
        assert endpoint.status_code == 422
        assert endpoint.json()["detail"][0]["loc"] == ["body", "filterTypes", "1"]
        # Changing an endpoint is held to the same catalog.
        ep = api.post(f"/app/{app}/endpoint", json={"url": "https://a.example/"}).json()["id"]
        typo_patch = api.patch(
            f"/app/{app}/endpoint/{ep}", json={"filterTypes": ["purchase.aproved"]}
        )
        assert typo_patch.status_code == 422
        assert "did you mean 'purchase.approved'?" in typo_patch.json()["detail"][0]["msg"]
        nothing_close = api.post(f"/app/{app}/msg", json={"eventType": "zzz", "payload": {}})
        assert "no such event type" in nothing_close.json()["detail"][0]["msg"]
        known = api.post(f"/app/{app}/msg", json={"eventType": "purchase.approved", "payload": {}})
        assert known.status_code == 202


@SQLITE
def test_a_reused_event_id_with_another_payload_is_reported(
    make_server: Callable[..., ServerHandle],
) -> None:
    for strict in (False, True):
        server = make_server(strict_catalog=strict)
        _api(server).post("/event-type", json={"name": "a.b"})
        api = _api(server)
        app = server.svix().application.create(ApplicationIn(name="shop")).id
        first = {"eventType": "a.b", "payload": {"n": 1}, "eventId": "evt-1"}
        assert api.post(f"/app/{app}/msg", json=first).status_code == 202
        asked = {RETURN_EXISTING: "true"}

        same = api.post(f"/app/{app}/msg", json=first, headers=asked)
        assert same.status_code == 200 and "postback-event-id-conflict" not in same.headers
        plain = api.post(f"/app/{app}/msg", json=first)
        assert plain.status_code == 409 and "postback-event-id-conflict" not in plain.headers

        changed = first | {"payload": {"n": 2}}
        refused = api.post(f"/app/{app}/msg", json=changed)
        assert refused.status_code == 409
        assert refused.headers["postback-event-id-conflict"] == "true"
        assert "another event type or payload" in refused.json()["detail"]
        returned = api.post(f"/app/{app}/msg", json=changed, headers=asked)
        assert returned.headers["postback-event-id-conflict"] == "true"
        if strict:
            assert returned.status_code == 409
        else:
            assert returned.status_code == 200 and returned.json()["payload"] == {"n": 1}


@SQLITE
def test_endpoints_answer_with_the_svix_1x_names_too(server: ServerHandle) -> None:
    api = _api(server)
    app = server.svix().application.create(ApplicationIn(name="shop")).id
    made = api.post(
        f"/app/{app}/endpoint",
        json={"url": "https://a.example/", "filterTypes": ["a.b"], "rateLimit": 7},
    ).json()
    assert (made["eventTypes"], made["filterTypes"]) == (["a.b"], ["a.b"])
    assert (made["throttleRate"], made["rateLimit"]) == (7, 7)
    listed = api.get(f"/app/{app}/endpoint").json()["data"][0]
    assert listed["filterTypes"] == ["a.b"] and listed["rateLimit"] == 7
