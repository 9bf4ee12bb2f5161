"""The Svix-compatible API, driven by the official ``svix`` SDK against a real server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from svix.api import (
    ApplicationIn,
    ApplicationListOptions,
    ApplicationPatch,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointPatch,
    EndpointSecretRotateIn,
    EndpointUpsertIn,
    EventTypeIn,
    EventTypeListOptions,
    EventTypePatch,
    EventTypeUpsertIn,
    MessageIn,
    MessageListOptions,
)
from svix.exceptions import HttpError, HTTPValidationError

from postback.api import views
from postback.domain import encode_json
from tests.support.server import ServerHandle


def test_health_and_openapi(server: ServerHandle) -> None:
    server.svix().health.get()
    for path in ("/api/v1/health", "/api/v1/health/"):
        assert httpx.get(server.url + path).status_code == 204
    # Building the document takes a while on a busy machine: a generous timeout.
    spec = httpx.get(server.url + "/openapi.json", timeout=60).json()
    assert "/api/v1/app/{app_id}/msg" in spec["paths"]
    assert "/api/v1/app/{app_id}/msg/" not in spec["paths"]  # the alias is hidden
    assert httpx.get(server.url + "/docs", timeout=60).status_code == 200


def test_auth_is_required(server: ServerHandle) -> None:
    r = httpx.get(server.url + "/api/v1/app")
    assert r.status_code == 401 and r.json()["code"] == "authentication_failed"
    with pytest.raises(HttpError) as err:
        server.svix("pb_wrong").application.list()
    assert err.value.status_code == 401


def test_applications(server: ServerHandle) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="Acme", uid="acme", metadata={"k": "v"}))
    assert app.id.startswith("app_") and app.uid == "acme" and app.metadata == {"k": "v"}
    assert svix.application.get("acme").id == app.id
    same = svix.application.get_or_create(ApplicationIn(name="ignored", uid="acme"))
    assert same.id == app.id and same.name == "Acme"
    with pytest.raises(HttpError) as err:
        svix.application.create(ApplicationIn(name="dup", uid="acme"))
    assert err.value.status_code == 409

    patched = svix.application.patch(app.id, ApplicationPatch(throttle_rate=5))
    assert patched.throttle_rate == 5 and patched.name == "Acme"
    upserted = svix.application.upsert(app.id, ApplicationIn(name="Acme 2", uid="acme"))
    assert upserted.name == "Acme 2" and upserted.throttle_rate is None
    created = svix.application.upsert("new-uid", ApplicationIn(name="Made by PUT"))
    assert created.uid == "new-uid"

    ids_ = [svix.application.create(ApplicationIn(name=f"n{i}")).id for i in range(3)]
    page = svix.application.list(ApplicationListOptions(limit=2))
    assert len(page.data) == 2 and not page.done
    rest = svix.application.list(ApplicationListOptions(limit=50, iterator=page.iterator))
    assert rest.done
    listed = [a.id for a in page.data + rest.data]
    assert listed == sorted(listed) and set(ids_) <= set(listed)

    svix.application.delete(app.id)
    with pytest.raises(HttpError) as err:
        svix.application.get(app.id)
    assert err.value.status_code == 404
    assert err.value.code == "not_found"


def test_event_types(server: ServerHandle) -> None:
    svix = server.svix()
    schema = {"1": {"type": "object", "properties": {"amount": {"type": "number"}}}}
    et = svix.event_type.create(
        EventTypeIn(name="purchase.approved", description="Paid", schemas=schema)
    )
    assert et.name == "purchase.approved" and not et.archived and not et.deprecated
    svix.event_type.create(EventTypeIn(name="purchase.refunded", description="Refunded"))
    assert svix.event_type.get("purchase.approved").schemas == schema
    patched = svix.event_type.patch("purchase.approved", EventTypePatch(deprecated=True))
    assert patched.deprecated and patched.description == "Paid"
    updated = svix.event_type.upsert("purchase.approved", EventTypeUpsertIn(description="Approved"))
    assert updated.description == "Approved" and not updated.deprecated
    svix.event_type.delete("purchase.refunded")  # archives
    names = [e.name for e in svix.event_type.list().data]
    assert names == ["purchase.approved"]
    every = svix.event_type.list(EventTypeListOptions(include_archived=True, with_content=True))
    assert [e.name for e in every.data] == ["purchase.approved", "purchase.refunded"]
    assert every.data[1].archived
    with pytest.raises(HTTPValidationError):
        svix.event_type.create(EventTypeIn(name="bad name!", description=""))


def test_endpoints_secrets_and_headers(server: ServerHandle) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    ep = svix.endpoint.create(
        app.id,
        EndpointIn(
            url="https://example.com/hook",
            uid="main",
            event_types=["purchase.approved"],
            channels=["product-42"],
            throttle_rate=10,
            headers={"X-Tenant": "7", "Authorization": "Bearer s3cret"},
        ),
    )
    assert ep.id.startswith("ep_") and ep.description == "" and ep.throttle_rate == 10
    assert ep.event_types == ["purchase.approved"] and ep.channels == ["product-42"]
    assert svix.endpoint.get(app.id, "main").id == ep.id

    secret = svix.endpoint.get_secret(app.id, ep.id).key
    assert secret.startswith("whsec_")
    svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn())
    rotated = svix.endpoint.get_secret(app.id, ep.id).key
    assert rotated != secret and rotated.startswith("whsec_")
    chosen = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn(key=chosen))
    assert svix.endpoint.get_secret(app.id, ep.id).key == chosen

    headers = svix.endpoint.get_headers(app.id, ep.id)
    assert headers.headers == {"X-Tenant": "7"} and headers.sensitive == ["Authorization"]
    svix.endpoint.set_headers(app.id, ep.id, EndpointHeadersIn(headers={"X-A": "1"}))
    assert svix.endpoint.get_headers(app.id, ep.id).headers == {"X-A": "1"}
    svix.endpoint.patch_headers(
        app.id, ep.id, EndpointHeadersPatchIn(headers={"X-B": "2"}, delete_headers=["X-A"])
    )
    assert svix.endpoint.get_headers(app.id, ep.id).headers == {"X-B": "2"}

    patched = svix.endpoint.patch(app.id, ep.id, EndpointPatch(description="primary"))
    assert patched.description == "primary" and patched.url == "https://example.com/hook"
    updated = svix.endpoint.upsert(app.id, ep.id, EndpointUpsertIn(url="https://example.org/h"))
    assert updated.url == "https://example.org/h" and updated.description == ""
    assert [e.id for e in svix.endpoint.list(app.id).data] == [ep.id]
    svix.endpoint.delete(app.id, ep.id)
    with pytest.raises(HttpError) as err:
        svix.endpoint.get(app.id, ep.id)
    assert err.value.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "https://e.com", "secret": "whsec_short"}, "secret"),
        ({"url": "https://e.com", "headers": {"webhook-id": "x"}}, "headers"),
        ({"url": "https://e.com", "filterTypes": ["no spaces"]}, "filterTypes"),
        ({"url": "https://e.com", "channels": [f"c{i}" for i in range(11)]}, "channels"),
        ({"url": "https://e.com", "rateLimit": 0}, "rateLimit"),
    ],
)
def test_endpoint_validation_names_the_field(server: ServerHandle, body: dict, field: str) -> None:
    auth = {"authorization": f"Bearer {server.token}"}
    app = httpx.post(server.url + "/api/v1/app/", json={"name": "v"}, headers=auth).json()
    r = httpx.post(f"{server.url}/api/v1/app/{app['id']}/endpoint", json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert any(field in d["loc"] for d in r.json()["detail"]), r.json()


def test_messages(server: ServerHandle) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop", uid="shop"))
    from svix.api import MessageCreateOptions, MessageGetOptions

    full = MessageCreateOptions(with_content=True)
    first = svix.message.create(
        "shop",
        MessageIn(
            event_type="purchase.approved",
            payload={"amount": 10, "buyer": {"name": "Ana"}},
            channels=["product-42"],
            event_id="evt-1",
            tags=["vip"],
        ),
        full,
    )
    assert first.id.startswith("msg_") and first.payload["buyer"] == {"name": "Ana"}
    assert first.event_id == "evt-1" and first.channels == ["product-42"]
    bare = svix.message.create(app.id, MessageIn(event_type="purchase.refunded", payload={}))
    assert bare.payload == {}  # the SDK asks for with_content=false by default
    # An eventId already used: Svix's 409, and nothing new is queued.
    with pytest.raises(HttpError) as reused:
        svix.message.create("shop", MessageIn(event_type="x", payload={}, event_id="evt-1"))
    assert reused.value.status_code == 409 and reused.value.code == "conflict"
    assert first.id in reused.value.detail

    got = svix.message.get(app.id, first.id, MessageGetOptions(with_content=True))
    assert got.payload == {"amount": 10, "buyer": {"name": "Ana"}} and got.tags == ["vip"]
    listed = svix.message.list(app.id, MessageListOptions(with_content=True))
    assert [m.id for m in listed.data] == [bare.id, first.id]  # newest first
    by_type = svix.message.list(app.id, MessageListOptions(event_types=["purchase.approved"]))
    assert [m.id for m in by_type.data] == [first.id]
    assert [
        m.id for m in svix.message.list(app.id, MessageListOptions(channel="product-42")).data
    ] == [first.id]
    future = datetime.now(UTC) + timedelta(minutes=1)
    assert svix.message.list(app.id, MessageListOptions(after=future)).data == []
    page = svix.message.list(app.id, MessageListOptions(limit=1))
    nxt = svix.message.list(app.id, MessageListOptions(limit=1, iterator=page.iterator))
    assert [page.data[0].id, nxt.data[0].id] == [bare.id, first.id] and nxt.done

    inline = svix.message.create(
        "new-customer",
        MessageIn(
            event_type="invoice.paid", payload={}, application=ApplicationIn(name="New customer")
        ),
    )
    assert inline.id and svix.application.get("new-customer").name == "New customer"
    with pytest.raises(HttpError) as err:
        svix.message.create("nobody", MessageIn(event_type="a", payload={}))
    assert err.value.status_code == 404


def test_unknown_ids_are_404_everywhere(server: ServerHandle) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    missing_msg = "msg_" + "0" * 26
    missing_ep = "ep_" + "0" * 26
    calls = [
        lambda: svix.endpoint.get(app.id, missing_ep),
        lambda: svix.message.get(app.id, missing_msg),
        lambda: svix.message_attempt.list_by_msg(app.id, missing_msg),
        lambda: svix.message_attempt.list_by_endpoint(app.id, missing_ep),
        lambda: svix.message_attempt.get(app.id, missing_msg, "atmpt_" + "0" * 26),
        lambda: svix.message_attempt.list_attempted_destinations(app.id, missing_msg),
        lambda: svix.message_attempt.resend(app.id, missing_msg, missing_ep),
        lambda: svix.event_type.get("nothing.here"),
        lambda: svix.endpoint.list("app_" + "0" * 26),
    ]
    for call in calls:
        with pytest.raises(HttpError) as err:
            call()
        assert err.value.status_code == 404


def test_oversized_and_malformed_bodies(server: ServerHandle) -> None:
    auth = {"authorization": f"Bearer {server.token}", "content-type": "application/json"}
    app = httpx.post(server.url + "/api/v1/app", json={"name": "v"}, headers=auth).json()
    url = f"{server.url}/api/v1/app/{app['id']}/msg"
    big = b'{"eventType":"a","payload":{"x":"' + b"a" * (2 * 1024 * 1024) + b'"}}'
    assert httpx.post(url, content=big, headers=auth).status_code == 413
    bad = httpx.post(url, content=b"{not json", headers=auth)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][0] == "body"
    wrong = httpx.post(url, json={"eventType": "a", "payload": [1, 2]}, headers=auth)
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "payload"]


def test_https_only_mode(make_server: Callable[..., ServerHandle]) -> None:
    server = make_server(require_https=True)
    auth = {"authorization": f"Bearer {server.token}"}
    app = httpx.post(server.url + "/api/v1/app", json={"name": "s"}, headers=auth).json()
    base = f"{server.url}/api/v1/app/{app['id']}/endpoint"
    r = httpx.post(base, json={"url": "http://shop.example/hook"}, headers=auth)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "url"]
    assert "https" in r.json()["detail"][0]["msg"]
    ok = httpx.post(base, json={"url": "https://shop.example/hook"}, headers=auth)
    assert ok.status_code == 201
    patched = httpx.patch(
        f"{base}/{ok.json()['id']}", json={"url": "http://shop.example/x"}, headers=auth
    )
    assert patched.status_code == 422


def test_expunge_content(server: ServerHandle) -> None:
    from svix.api import MessageGetOptions

    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    msg = svix.message.create(
        app.id, MessageIn(event_type="a", payload={"card": "4111"}, payload_retention_period=30)
    )
    full = MessageGetOptions(with_content=True)
    assert svix.message.get(app.id, msg.id, full).payload == {"card": "4111"}
    svix.message.expunge_content(app.id, msg.id)
    gone = svix.message.get(app.id, msg.id, full)
    assert gone.id == msg.id and gone.payload == {}


@pytest.mark.parametrize("with_content", [True, False])
@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"channels": ["product-42"], "tags": ["a", "b"], "event_id": "evt-1"},
        {"deliver_at": datetime(2026, 12, 1, 8, 0, tzinfo=UTC), "payload": None},
    ],
)
def test_the_fast_message_body_is_the_documented_one_byte_for_byte(
    with_content: bool, extra: dict
) -> None:
    row = {
        "id": "msg_01m88fyyx8143q23xq538snqhy",
        "event_type": "purchase.approved",
        "event_id": None,
        # As ingest stores it: compact JSON (the stdlib's, for this over-64-bit integer).
        "payload": encode_json({"data": {"buyer": {"name": "Ana é"}, "n": 2**70, "x": [1.5]}}),
        "channels": None,
        "tags": None,
        "created_at": datetime(2026, 11, 25, 5, 30, 0, 120000, tzinfo=UTC),
        "deliver_at": None,
    } | extra
    slow = views.message(row, with_content=with_content).model_dump_json(by_alias=True)
    assert views.message_json(row, with_content=with_content) == slow.encode()
