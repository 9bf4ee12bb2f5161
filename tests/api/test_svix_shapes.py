"""Svix's answers, asserted by hand where the conformance run (test_svix_conformance.py) only
samples them: status codes and bodies of the routes that used to say more or other than
Svix's document, the opt-ins that keep the extra answers, and the error shapes."""

from __future__ import annotations

import time

import httpx
import pytest
from svix.api import ApplicationIn, EndpointIn, EndpointSecretRotateIn, EventTypeIn, MessageIn

from postback.api.optins import RETURN_EXISTING
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _client(server: ServerHandle, **headers: str) -> httpx.Client:
    auth = {"authorization": f"Bearer {server.token}"}
    return httpx.Client(base_url=server.url + "/api/v1", headers=auth | headers, timeout=30)


def _app_and_endpoint(server: ServerHandle, url: str = "http://127.0.0.1:9/h") -> tuple[str, str]:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop", uid="shop"))
    return app.id, svix.endpoint.create(app.id, EndpointIn(url=url)).id


@SQLITE
def test_rotate_answers_204_and_the_key_only_when_asked(server: ServerHandle) -> None:
    app, ep = _app_and_endpoint(server)
    api = _client(server)
    secret = f"/app/{app}/endpoint/{ep}/secret"
    before = api.get(secret).json()["key"]
    bare = api.post(secret + "/rotate", json={})
    assert bare.status_code == 204 and bare.content == b""
    rotated = api.get(secret).json()["key"]
    assert rotated != before

    asked = api.post(secret + "/rotate", json={}, headers={"prefer": "return=representation"})
    assert asked.status_code == 200 and asked.headers["preference-applied"] == (
        "return=representation"
    )
    assert asked.json() == {"key": api.get(secret).json()["key"]} != {"key": rotated}
    # Another preference beside it, spaced as RFC 7240 allows: still asked.
    spaced = api.post(
        secret + "/rotate", json={}, headers={"prefer": "respond-async, return = representation"}
    )
    assert spaced.status_code == 200 and spaced.json()["key"].startswith("whsec_")
    other = api.post(secret + "/rotate", json={}, headers={"prefer": "return=minimal"})
    assert other.status_code == 204

    # The Svix SDK reads the new key from this answer: it gets it without asking.
    sdk = server.svix().endpoint.rotate_secret(app, ep, EndpointSecretRotateIn())
    assert sdk.key == api.get(secret).json()["key"]


@SQLITE
def test_a_reused_event_id_is_a_409_unless_the_first_message_is_asked_for(
    server: ServerHandle,
) -> None:
    app, _ = _app_and_endpoint(server)
    api = _client(server)
    body = {"eventType": "a.b", "eventId": "evt-1", "payload": {"n": 1}}
    first = api.post(f"/app/{app}/msg", json=body)
    assert first.status_code == 202
    again = api.post(f"/app/{app}/msg", json=body | {"payload": {"n": 2}})
    assert again.status_code == 409
    assert again.json()["code"] == "conflict" and first.json()["id"] in again.json()["detail"]
    asked = api.post(f"/app/{app}/msg", json=body, headers={RETURN_EXISTING: "true"})
    assert asked.status_code == 200 and asked.json() == first.json()
    assert [m["id"] for m in api.get(f"/app/{app}/msg").json()["data"]] == [first.json()["id"]]


@SQLITE
def test_send_example_answers_200_with_the_message(
    server: ServerHandle, receiver: Receiver
) -> None:
    app, ep = _app_and_endpoint(server, receiver.route("/x", ok()))
    server.svix().event_type.create(EventTypeIn(name="user.signup", description="Signed up"))
    sent = _client(server).post(
        f"/app/{app}/endpoint/{ep}/send-example", json={"eventType": "user.signup"}
    )
    assert sent.status_code == 200 and sent.json()["eventType"] == "user.signup"
    assert sent.json()["id"].startswith("msg_")
    assert len(receiver.wait_for(1, "/x")) == 1


def test_an_attempts_response_body_can_be_expunged(
    server: ServerHandle, receiver: Receiver
) -> None:
    app, _ = _app_and_endpoint(server, receiver.route("/said", ok(body="secret-in-the-body")))
    msg = server.svix().message.create(app, MessageIn(event_type="a.b", payload={}))
    api = _client(server)
    deadline = time.monotonic() + 20
    while not (attempts := api.get(f"/app/{app}/attempt/msg/{msg.id}").json()["data"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (attempt,) = attempts
    assert attempt["response"] == "secret-in-the-body"
    path = f"/app/{app}/msg/{msg.id}/attempt/{attempt['id']}"
    gone = api.delete(path + "/content")
    assert gone.status_code == 204 and gone.content == b""
    assert api.get(path).json()["response"] == "EXPUNGED"
    missing = api.delete(f"/app/{app}/msg/{msg.id}/attempt/atmpt_nope/content")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    no_msg = api.delete(f"/app/{app}/msg/msg_nope/attempt/{attempt['id']}/content")
    assert no_msg.status_code == 404 and no_msg.json()["code"] == "not_found"


@SQLITE
def test_health_and_ping_answer_get_and_head_without_a_token(server: ServerHandle) -> None:
    for path in ("/api/v1/health", "/api/v1/health/ping"):
        for method in ("GET", "HEAD"):
            answer = httpx.request(method, server.url + path)
            assert answer.status_code == 204 and answer.content == b"", (method, path)


@SQLITE
def test_bodies_that_are_not_json_are_422_in_svix_shape(server: ServerHandle) -> None:
    api = _client(server, **{"content-type": "application/json"})
    for raw in (b"{oops", b"\xff\xfe\x00garbage", b'{"name": "x",}'):
        answer = api.post("/app", content=raw)
        assert answer.status_code == 422, raw
        (item,) = answer.json()["detail"]
        assert item["loc"] == ["body"] and item["type"] == "value_error.jsondecode", item
        assert item["msg"].startswith("not JSON")


@SQLITE
def test_every_loc_item_is_a_string(server: ServerHandle) -> None:
    app, ep = _app_and_endpoint(server)
    api = _client(server)
    listed = api.patch(f"/app/{app}/endpoint/{ep}", json={"eventTypes": ["ok", 7]})
    assert listed.status_code == 422
    assert listed.json()["detail"][0]["loc"] == ["body", "eventTypes", "1"]
    flags = api.post(f"/auth/app-portal-access/{app}", json={"featureFlags": [{}]})
    assert flags.status_code == 422
    for item in flags.json()["detail"]:
        assert all(isinstance(part, str) for part in item["loc"]), item


@SQLITE
def test_an_operator_token_may_not_log_out(server: ServerHandle) -> None:
    answer = _client(server).post("/auth/logout")
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    assert _client(server).get("/app").status_code == 200  # the token still works
