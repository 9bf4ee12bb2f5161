"""Endpoint health: operational webhooks for the operator, auto-disable on an injectable
clock, re-enabling."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import orjson
import pytest
import standardwebhooks
from svix.api import (
    ApplicationIn,
    EndpointIn,
    EndpointPatch,
    MessageIn,
    OperationalWebhookEndpointIn,
)

from postback.domain import utcnow
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _events(receiver: Receiver, secret: str) -> list[dict]:
    hook = standardwebhooks.Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in receiver.received("/ops")]


def test_operational_webhooks_and_auto_disable(
    make_server: Callable[..., ServerHandle], receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(retry_schedule=(0.05, 0.05, 0.05, 0.05), disable_after=5 * 86400)
    svix = server.svix()
    ops = svix.operational_webhook.endpoint.create(
        OperationalWebhookEndpointIn(url=receiver.route("/ops", ok()))
    )
    ops_secret = svix.operational_webhook.endpoint.get_secret(ops.id).key
    app = svix.application.create(ApplicationIn(name="shop", uid="shop"))
    url = receiver.route("/down", fail(500))
    ep = svix.endpoint.create(app.id, EndpointIn(url=url, uid="main"))
    first = svix.message.create(app.id, MessageIn(event_type="a", payload={}, event_id="e1"))

    def kinds() -> list[str]:
        return [e["type"] for e in _events(receiver, ops_secret)]

    eventually(lambda: "message.attempt.exhausted" in kinds())
    events = _events(receiver, ops_secret)
    assert kinds()[:1] == ["endpoint.created"]
    (failing,) = [e for e in events if e["type"] == "message.attempt.failing"]
    assert failing["data"]["msgId"] == first.id and failing["data"]["msgEventId"] == "e1"
    assert failing["data"]["appUid"] == "shop" and failing["data"]["endpointUid"] == "main"
    assert failing["data"]["lastAttempt"]["responseStatusCode"] == 500
    assert len(receiver.received("/down")) == 5  # exhausted after the whole schedule
    assert not svix.endpoint.get(app.id, ep.id).disabled  # failing, but not for 5 days yet

    # Six days later (on the store's clock) it still fails: now it is disabled.
    server.store.clock = lambda: utcnow() + timedelta(days=6)  # type: ignore[union-attr]
    second = svix.message.create(app.id, MessageIn(event_type="a", payload={}))
    eventually(lambda: "endpoint.disabled" in kinds())
    (disabled,) = [e for e in _events(receiver, ops_secret) if e["type"] == "endpoint.disabled"]
    assert disabled["data"]["endpointId"] == ep.id and disabled["data"]["trigger"] == "automatic"
    # The reason travels as a code with its values (the webhook, the API, the log line).
    cause = disabled["data"]["reason"]
    assert cause["code"] == "failing_since" and cause["attempts"] >= 5
    assert cause["since"] == disabled["data"]["failSince"]
    auth = {"authorization": f"Bearer {server.token}"}
    raw = httpx.get(f"{server.url}/api/v1/app/{app.id}/endpoint/{ep.id}", headers=auth).json()
    assert raw["disabled"] is True and "auto-disabled" in raw["disabledReason"]
    assert raw["disabledCause"] == cause
    assert raw["disabledAt"] is not None
    (line,) = [r for r in caplog.records if getattr(r, "event", "") == "endpoint.disabled"]
    assert line.levelname == "WARNING" and ep.id in line.getMessage()
    assert (line.app_id, line.endpoint_id, line.reason) == (app.id, ep.id, cause)  # type: ignore[attr-defined]

    # Disabled: its retries stop and new messages skip it.
    seen = len(receiver.received("/down"))
    third = svix.message.create(app.id, MessageIn(event_type="a", payload={}))
    time.sleep(0.5)
    assert len(receiver.received("/down")) == seen
    (skipped,) = svix.message_attempt.list_attempted_destinations(app.id, third.id).data
    assert (skipped.id, skipped.status) == (ep.id, 4)  # canceled: it is listed, and why
    listed = httpx.get(f"{server.url}/api/v1/app/{app.id}/msg/{third.id}/endpoint", headers=auth)
    assert listed.json()["data"][0]["reason"] == {"code": "disabled"}

    # Re-enabled and healthy again: the parked retry goes out and succeeds.
    receiver.route("/down", ok())
    svix.endpoint.patch(app.id, ep.id, EndpointPatch(disabled=False))
    eventually(
        lambda: (
            svix.message_attempt.list_attempted_destinations(app.id, second.id).data[0].status == 0
        )
    )
    raw = httpx.get(f"{server.url}/api/v1/app/{app.id}/endpoint/{ep.id}", headers=auth).json()
    assert raw["disabled"] is False and raw["disabledReason"] is None
    assert "endpoint.updated" in kinds()


def test_one_success_resets_the_failure_clock(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    server = make_server(retry_schedule=(), disable_after=3600)
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    url = receiver.route("/flaky", fail(500))
    ep = svix.endpoint.create(app.id, EndpointIn(url=url))
    svix.message.create(app.id, MessageIn(event_type="a", payload={}))
    receiver.wait_for(1, "/flaky")
    receiver.route("/flaky", ok())
    svix.message.create(app.id, MessageIn(event_type="a", payload={}))
    receiver.wait_for(2, "/flaky")
    time.sleep(0.3)
    # Two hours later a failure starts a new clock rather than continuing the old one.
    server.store.clock = lambda: utcnow() + timedelta(hours=2)  # type: ignore[union-attr]
    receiver.route("/flaky", fail(500))
    svix.message.create(app.id, MessageIn(event_type="a", payload={}))
    receiver.wait_for(3, "/flaky")
    time.sleep(0.3)
    assert not svix.endpoint.get(app.id, ep.id).disabled


def test_operational_endpoints_filter_event_types(server: ServerHandle, receiver: Receiver) -> None:
    svix = server.svix()
    svix.operational_webhook.endpoint.create(
        OperationalWebhookEndpointIn(
            url=receiver.route("/ops", ok()), event_types=["endpoint.deleted"]
        )
    )
    app = svix.application.create(ApplicationIn(name="shop"))
    ep = svix.endpoint.create(app.id, EndpointIn(url="https://shop.example/h"))
    svix.endpoint.delete(app.id, ep.id)
    (got,) = receiver.wait_for(1, "/ops")
    body = orjson.loads(got.body)
    assert body["type"] == "endpoint.deleted" and body["data"]["endpointId"] == ep.id
    # The operational application is not one of the operator's applications.
    assert [a.id for a in svix.application.list().data] == [app.id]


def test_recovered_event_after_a_failing_one(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    from tests.support.receivers import fail_then_ok

    server = make_server(retry_schedule=(0.05,) * 6)
    svix = server.svix()
    ops = svix.operational_webhook.endpoint.create(
        OperationalWebhookEndpointIn(
            url=receiver.route("/ops", ok()),
            event_types=["message.attempt.failing", "message.attempt.recovered"],
        )
    )
    secret = svix.operational_webhook.endpoint.get_secret(ops.id).key
    app = svix.application.create(ApplicationIn(name="shop"))
    svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/flaky", fail_then_ok(5))))
    msg = svix.message.create(app.id, MessageIn(event_type="a", payload={}))
    receiver.wait_for(2, "/ops")
    events = _events(receiver, secret)
    assert [e["type"] for e in events] == ["message.attempt.failing", "message.attempt.recovered"]
    assert {e["data"]["msgId"] for e in events} == {msg.id}
    assert events[1]["data"]["lastAttempt"]["responseStatusCode"] == 200
    assert len(receiver.received("/flaky")) == 6
