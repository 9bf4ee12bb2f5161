"""Delivery operations through the svix SDK: idempotency, secret rotation with overlap,
test events."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import standardwebhooks
from svix.api import (
    ApplicationCreateOptions,
    ApplicationIn,
    EndpointIn,
    EndpointSecretRotateIn,
    EventExampleIn,
    EventTypeIn,
    MessageCreateOptions,
    MessageIn,
)
from svix.exceptions import HttpError, HTTPValidationError

from tests.support.polling import eventually
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


# ---- idempotency ---------------------------------------------------------------------


def test_idempotency_key_replays_the_first_answer(server: ServerHandle, receiver: Receiver) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/h", ok())))
    options = MessageCreateOptions(idempotency_key="order-1-approved", with_content=True)
    body = MessageIn(event_type="purchase.approved", payload={"order": 1})
    first = svix.message.create(app.id, body, options)
    again = svix.message.create(app.id, body, options)
    assert again.id == first.id and again.payload == {"order": 1}
    assert len(svix.message.list(app.id).data) == 1  # nothing was created twice
    receiver.wait_for(1, "/h")
    time.sleep(0.3)
    assert len(receiver.received("/h")) == 1

    # The same key with another body is refused.
    other = MessageIn(event_type="purchase.approved", payload={"order": 2})
    with pytest.raises(HttpError) as err:
        svix.message.create(app.id, other, options)
    assert err.value.status_code == 409 and err.value.code == "idempotency_conflict"


def test_idempotency_covers_every_post_and_is_scoped_to_the_caller(server: ServerHandle) -> None:
    svix = server.svix()
    key = ApplicationCreateOptions(idempotency_key="create-acme")
    first = svix.application.create(ApplicationIn(name="Acme"), key)
    assert svix.application.create(ApplicationIn(name="Acme"), key).id == first.id
    assert len(svix.application.list().data) == 1
    # Another caller using the same key string gets its own, independent request.
    _, other_token = server.call(lambda s: s.create_operator_token("second"))
    other = server.svix(other_token).application.create(ApplicationIn(name="Acme"), key)
    assert other.id != first.id
    # Errors are replayed too (a 4xx is an answer), but 5xx never are.
    auth = {"authorization": f"Bearer {server.token}", "idempotency-key": "bad-one"}
    url = f"{server.url}/api/v1/app"
    assert httpx.post(url, json={"name": ""}, headers=auth).status_code == 422
    assert httpx.post(url, json={"name": ""}, headers=auth).status_code == 422


def test_idempotency_keys_expire_after_a_day(server: ServerHandle) -> None:
    from datetime import timedelta

    from postback.domain import utcnow

    auth = {"authorization": f"Bearer {server.token}", "idempotency-key": "k1"}
    url = f"{server.url}/api/v1/app"
    first = httpx.post(url, json={"name": "a"}, headers=auth).json()
    server.store.clock = lambda: utcnow() + timedelta(hours=25)  # type: ignore[union-attr]
    later = httpx.post(url, json={"name": "a"}, headers=auth).json()
    assert later["id"] != first["id"]


# ---- secret rotation -----------------------------------------------------------------


def test_rotation_signs_with_both_secrets_during_the_grace_period(
    server: ServerHandle, receiver: Receiver
) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/h", ok())))
    old = svix.endpoint.get_secret(app.id, ep.id).key
    new = svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn()).key
    assert new != old and svix.endpoint.get_secret(app.id, ep.id).key == new
    svix.message.create(app.id, MessageIn(event_type="a", payload={"n": 1}))
    (got,) = receiver.wait_for(1, "/h")
    assert len(got.headers["webhook-signature"].split()) == 2
    # A receiver still on the old secret and one already on the new both verify.
    for secret in (old, new):
        standardwebhooks.Webhook(secret).verify(got.body, got.headers)

    # A rotation with no grace drops the secret it replaces at once; `old` is still
    # inside the grace period of the first rotation.
    newest = svix.endpoint.rotate_secret(
        app.id, ep.id, EndpointSecretRotateIn(grace_period_seconds=0)
    ).key
    svix.message.create(app.id, MessageIn(event_type="a", payload={"n": 2}))
    second = receiver.wait_for(2, "/h")[1]
    assert len(second.headers["webhook-signature"].split()) == 2
    for secret in (newest, old):
        standardwebhooks.Webhook(secret).verify(second.body, second.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new).verify(second.body, second.headers)


def test_rotated_secrets_stop_signing_when_the_grace_period_ends(
    server: ServerHandle, receiver: Receiver
) -> None:
    from datetime import timedelta

    from postback.domain import utcnow

    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/h", ok())))
    old = svix.endpoint.get_secret(app.id, ep.id).key
    new = svix.endpoint.rotate_secret(
        app.id, ep.id, EndpointSecretRotateIn(grace_period_seconds=3600)
    ).key
    server.store.clock = lambda: utcnow() + timedelta(hours=2)  # type: ignore[union-attr]
    svix.message.create(app.id, MessageIn(event_type="a", payload={}))
    (got,) = receiver.wait_for(1, "/h")
    assert len(got.headers["webhook-signature"].split()) == 1
    standardwebhooks.Webhook(new).verify(got.body, got.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(old).verify(got.body, got.headers)


# ---- test events ---------------------------------------------------------------------

PURCHASE_SCHEMA = {
    "1": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "amount": {"type": "number", "minimum": 1},
            "buyer": {
                "type": "object",
                "properties": {"email": {"type": "string", "format": "email"}},
            },
            "status": {"enum": ["APPROVED", "REFUNDED"]},
        },
    }
}


def test_send_example_uses_the_schema_examples(server: ServerHandle, receiver: Receiver) -> None:
    svix = server.svix()
    examples = [{"id": "ord_1", "amount": 10}, {"id": "ord_2", "amount": 20}]
    svix.event_type.create(
        EventTypeIn(
            name="purchase.approved",
            description="Paid",
            schemas={"1": {**PURCHASE_SCHEMA["1"], "examples": examples}},
        )
    )
    svix.event_type.create(
        EventTypeIn(name="purchase.refunded", description="", schemas=PURCHASE_SCHEMA)
    )
    app = svix.application.create(ApplicationIn(name="shop"))
    # Filters do not apply to a test event: it goes to the endpoint asked for, alone.
    target = svix.endpoint.create(
        app.id, EndpointIn(url=receiver.route("/t", ok()), event_types=["other.event"])
    )
    svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/bystander", ok())))
    secret = svix.endpoint.get_secret(app.id, target.id).key

    msg = svix.endpoint.send_example(
        app.id, target.id, EventExampleIn(event_type="purchase.approved", example_index=1)
    )
    (got,) = receiver.wait_for(1, "/t")
    assert standardwebhooks.Webhook(secret).verify(got.body, got.headers) == examples[1]
    assert got.headers["webhook-id"] == msg.id

    svix.endpoint.send_example(app.id, target.id, EventExampleIn(event_type="purchase.refunded"))
    generated = standardwebhooks.Webhook(secret).verify(
        receiver.wait_for(2, "/t")[1].body, receiver.wait_for(2, "/t")[1].headers
    )
    assert generated == {
        "id": "00000000-0000-4000-8000-000000000000",
        "amount": 1.0,
        "buyer": {"email": "buyer@example.com"},
        "status": "APPROVED",
    }
    time.sleep(0.3)
    assert receiver.received("/bystander") == []

    def recorded() -> list:
        return svix.message_attempt.list_by_msg(app.id, msg.id).data

    assert eventually(recorded)[0].endpoint_id == target.id
    with pytest.raises(HTTPValidationError):
        svix.endpoint.send_example(
            app.id, target.id, EventExampleIn(event_type="purchase.approved", example_index=5)
        )
    with pytest.raises(HTTPValidationError):
        svix.endpoint.send_example(app.id, target.id, EventExampleIn(event_type="no.such.type"))


# ---- recover -------------------------------------------------------------------------


def test_recover_requeues_failed_deliveries_in_the_window(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    from datetime import UTC, datetime

    from svix.api import RecoverIn

    from tests.support.receivers import fail

    server = make_server(retry_schedule=())
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/r", fail(500))))
    old = svix.message.create(app.id, MessageIn(event_type="a", payload={"n": 0}))
    receiver.wait_for(1, "/r")
    time.sleep(0.05)
    since = datetime.now(UTC)
    recent = [
        svix.message.create(app.id, MessageIn(event_type="a", payload={"n": i})).id for i in (1, 2)
    ]

    def all_failed() -> bool:
        dests = [
            svix.message_attempt.list_attempted_destinations(app.id, m).data[0].status
            for m in [old.id, *recent]
        ]
        return dests == [2, 2, 2]

    eventually(all_failed)
    receiver.route("/r", ok())  # the receiver is fixed
    out = svix.endpoint.recover(app.id, ep.id, RecoverIn(since=since))
    assert out.task == "endpoint.recover"

    def finished() -> object:
        task = svix.background_task.get(out.id)
        return task if task.status == "finished" else None

    task = eventually(finished)
    assert task.data["recovered"] == 2 and task.data["endpointId"] == ep.id
    got = receiver.wait_for(5, "/r")  # 3 failures, then the 2 recovered
    assert sorted(r.headers["webhook-id"] for r in got[3:]) == sorted(recent)
    time.sleep(0.3)
    assert len(receiver.received("/r")) == 5  # the older message was left alone
    listed = svix.background_task.list().data
    assert [t.id for t in listed] == [out.id]
    with pytest.raises(HTTPValidationError):
        svix.endpoint.recover(app.id, ep.id, RecoverIn(since=since, until=since))
