"""End to end: messages created through the svix SDK reach real loopback receivers, signed,
retried on the (scaled-down) schedule, with every attempt recorded."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import pytest
import standardwebhooks
from svix.api import (
    ApplicationIn,
    EndpointIn,
    MessageAttemptListByEndpointOptions,
    MessageIn,
)
from svix.webhooks import Webhook as SvixWebhook

from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, fail_then_ok, hang, ok, redirect
from tests.support.server import ServerHandle


@pytest.fixture
def receiver() -> Receiver:
    with Receiver() as r:
        yield r


def _setup(server: ServerHandle, url: str, **endpoint: object) -> tuple[str, str, str]:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=url, **endpoint))
    return app.id, ep.id, svix.endpoint.get_secret(app.id, ep.id).key


def test_delivery_is_signed_and_verifiable(server: ServerHandle, receiver: Receiver) -> None:
    url = receiver.route("/hook", ok())
    app_id, ep_id, secret = _setup(server, url, headers={"X-Tenant": "acme"})
    payload = {"event": "purchase.approved", "amount": 129.9, "buyer": {"name": "Ana Lúcia"}}
    msg = server.svix().message.create(
        app_id, MessageIn(event_type="purchase.approved", payload=payload)
    )
    (got,) = receiver.wait_for(1, "/hook")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-tenant"] == "acme"
    assert got.headers["webhook-id"] == got.headers["svix-id"] == msg.id
    assert orjson.loads(got.body) == payload
    # Both receiver libraries accept what we sent, as sent.
    assert standardwebhooks.Webhook(secret).verify(got.body, got.headers) == payload
    SvixWebhook(secret).verify(
        got.body, {k: v for k, v in got.headers.items() if k.startswith("svix-")}
    )
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(got.body + b" ", got.headers)

    def attempts() -> list:
        return server.svix().message_attempt.list_by_msg(app_id, msg.id).data

    (attempt,) = eventually(attempts)
    assert attempt.status == 0 and attempt.status_text == "success"
    assert attempt.response_status_code == 200 and attempt.response == "ok"
    assert attempt.trigger_type == 0 and attempt.endpoint_id == ep_id and attempt.url == url
    one = server.svix().message_attempt.get(app_id, msg.id, attempt.id)
    assert one.id == attempt.id
    (dest,) = server.svix().message_attempt.list_attempted_destinations(app_id, msg.id).data
    assert dest.id == ep_id and dest.status == 0 and dest.next_attempt is None


def test_fails_twice_then_succeeds_in_three_attempts(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    server = make_server(retry_schedule=(0.1, 0.2, 0.2))
    url = receiver.route("/flaky", fail_then_ok(2))
    app_id, _, _ = _setup(server, url)
    msg = server.svix().message.create(app_id, MessageIn(event_type="invoice.paid", payload={}))
    receiver.wait_for(3, "/flaky")

    def final() -> list:
        data = server.svix().message_attempt.list_by_msg(app_id, msg.id).data
        return data if len(data) == 3 else []

    attempts = eventually(final)
    assert [a.response_status_code for a in attempts] == [200, 500, 500]  # newest first
    time.sleep(0.6)  # longer than any remaining wait: no fourth attempt comes
    assert len(receiver.received("/flaky")) == 3
    ids_ = {r.headers["webhook-id"] for r in receiver.received("/flaky")}
    assert ids_ == {msg.id}  # the same id on every retry, so receivers can dedupe
    (dest,) = server.svix().message_attempt.list_attempted_destinations(app_id, msg.id).data
    assert dest.status == 0


def test_always_failing_ends_failed_after_the_schedule(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    server = make_server(retry_schedule=(0.05, 0.1, 0.1))
    url = receiver.route("/down", fail(503))
    app_id, ep_id, _ = _setup(server, url)
    msg = server.svix().message.create(app_id, MessageIn(event_type="invoice.paid", payload={}))

    def failed() -> object:
        (d,) = server.svix().message_attempt.list_attempted_destinations(app_id, msg.id).data
        return d.status_text == "fail" and d

    dest = eventually(failed)
    assert dest.next_attempt is None
    assert len(receiver.received("/down")) == 4  # first try + 3 retries
    by_ep = server.svix().message_attempt.list_by_endpoint(
        app_id, ep_id, MessageAttemptListByEndpointOptions(status=2)
    )
    assert len(by_ep.data) == 4 and {a.response_status_code for a in by_ep.data} == {503}
    stats = server.svix().endpoint.get_stats(app_id, ep_id)
    assert stats.fail == 1 and stats.success == 0


def test_a_hanging_receiver_times_out(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    server = make_server(request_timeout=0.5, retry_schedule=())
    url = receiver.route("/slow", hang(5))
    app_id, _, _ = _setup(server, url)
    msg = server.svix().message.create(app_id, MessageIn(event_type="a", payload={}))

    def attempts() -> list:
        return server.svix().message_attempt.list_by_msg(app_id, msg.id).data

    (attempt,) = eventually(attempts)
    assert attempt.response_status_code == 0 and attempt.status == 2
    assert "timed out" in attempt.response
    assert 400 <= attempt.response_duration_ms < 3000


def test_redirects_are_not_followed(server: ServerHandle, receiver: Receiver) -> None:
    target = receiver.route("/target", ok())
    url = receiver.route("/moved", redirect(target))
    app_id, _, _ = _setup(server, url)
    msg = server.svix().message.create(app_id, MessageIn(event_type="a", payload={}))

    def attempts() -> list:
        return server.svix().message_attempt.list_by_msg(app_id, msg.id).data

    attempt = eventually(attempts)[0]
    assert attempt.response_status_code == 302 and attempt.status == 2
    assert receiver.received("/target") == []


def test_filter_types_and_channels(server: ServerHandle, receiver: Receiver) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    approved = receiver.route("/approved", ok())
    product = receiver.route("/product", ok())
    svix.endpoint.create(app.id, EndpointIn(url=approved, event_types=["purchase.approved"]))
    svix.endpoint.create(app.id, EndpointIn(url=product, channels=["product-42"]))
    send = svix.message.create
    send(app.id, MessageIn(event_type="purchase.refunded", payload={"n": 1}))
    send(app.id, MessageIn(event_type="purchase.approved", payload={"n": 2}))
    send(
        app.id, MessageIn(event_type="purchase.refunded", payload={"n": 3}, channels=["product-42"])
    )
    send(
        app.id, MessageIn(event_type="purchase.approved", payload={"n": 4}, channels=["product-7"])
    )
    receiver.wait_for(2, "/approved")
    receiver.wait_for(1, "/product")
    time.sleep(0.3)
    assert sorted(orjson.loads(r.body)["n"] for r in receiver.received("/approved")) == [2, 4]
    assert [orjson.loads(r.body)["n"] for r in receiver.received("/product")] == [3]


def test_resend_is_a_manual_attempt(server: ServerHandle, receiver: Receiver) -> None:
    url = receiver.route("/hook", ok())
    app_id, ep_id, _ = _setup(server, url)
    svix = server.svix()
    msg = svix.message.create(app_id, MessageIn(event_type="a", payload={"x": 1}))
    receiver.wait_for(1, "/hook")
    svix.message_attempt.resend(app_id, msg.id, ep_id)
    second = receiver.wait_for(2, "/hook")[1]
    assert second.headers["webhook-id"] == msg.id and orjson.loads(second.body) == {"x": 1}

    def both() -> list:
        data = svix.message_attempt.list_by_endpoint(app_id, ep_id).data
        return data if len(data) == 2 else []

    assert [a.trigger_type for a in eventually(both)] == [1, 0]
    (sent,) = svix.message_attempt.list_attempted_messages(app_id, ep_id).data
    assert sent.id == msg.id and sent.status == 0


def test_a_response_with_a_nul_character_is_recorded(
    server: ServerHandle, receiver: Receiver
) -> None:
    """PostgreSQL text cannot hold NUL: such a response used to fail its whole batch of
    attempts, over and over."""
    url = receiver.route("/nul", ok(body="ok\x00then more"))
    app_id, _, _ = _setup(server, url)
    msg = server.svix().message.create(app_id, MessageIn(event_type="a", payload={}))

    def attempts() -> list:
        return server.svix().message_attempt.list_by_msg(app_id, msg.id).data

    (attempt,) = eventually(attempts)
    assert attempt.response_status_code == 200 and attempt.response == "ok\ufffdthen more"
