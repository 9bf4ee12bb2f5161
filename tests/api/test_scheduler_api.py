"""The scheduler's side of the API: an endpoint's cap, its circuit state (and the operator
told when it opens: a log warning, an operational webhook), bad input."""

from __future__ import annotations

import time

import httpx
import pytest
import standardwebhooks
from svix.api import ApplicationIn, EndpointIn, MessageIn, OperationalWebhookEndpointIn

from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle


def _auth(server: ServerHandle) -> dict[str, str]:
    return {"authorization": f"Bearer {server.token}"}


def test_max_in_flight_is_set_read_and_cleared(server: ServerHandle) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    base = f"{server.url}/api/v1/app/{app.id}/endpoint"
    made = httpx.post(
        base, json={"url": "https://shop.example/h", "maxInFlight": 3}, headers=_auth(server)
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["maxInFlight"] == 3
    assert body["circuit"] == {"state": "closed", "since": None, "nextProbeAt": None, "failures": 0}
    ep = body["id"]
    patched = httpx.patch(f"{base}/{ep}", json={"maxInFlight": None}, headers=_auth(server))
    assert patched.status_code == 200 and patched.json()["maxInFlight"] is None
    put = httpx.put(
        f"{base}/{ep}",
        json={"url": "https://shop.example/h", "maxInFlight": 7},
        headers=_auth(server),
    )
    assert put.json()["maxInFlight"] == 7
    # The svix SDK reads it back unchanged (it ignores what it does not know).
    assert svix.endpoint.get(app.id, ep).url == "https://shop.example/h"


@pytest.mark.parametrize("bad", [0, -1, 10_001, "many", 1.5])
def test_an_absurd_cap_is_a_422_naming_the_field(server: ServerHandle, bad: object) -> None:
    app = server.svix().application.create(ApplicationIn(name="shop"))
    got = httpx.post(
        f"{server.url}/api/v1/app/{app.id}/endpoint",
        json={"url": "https://shop.example/h", "maxInFlight": bad},
        headers=_auth(server),
    )
    assert got.status_code == 422
    assert got.json()["detail"][0]["loc"][-1] == "maxInFlight"


def test_the_circuit_state_shows_in_the_endpoint(
    make_server: object, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(  # type: ignore[operator]
        circuit_failure_threshold=2, circuit_cooldown=30.0, circuit_max_cooldown=60.0
    )
    svix = server.svix()
    ops = svix.operational_webhook.endpoint.create(
        OperationalWebhookEndpointIn(
            url=receiver.route("/ops", ok()), event_types=["endpoint.circuit.opened"]
        )
    )
    ops_secret = svix.operational_webhook.endpoint.get_secret(ops.id).key
    app = svix.application.create(ApplicationIn(name="shop"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/down", fail(503))))
    for n in range(3):
        svix.message.create(app.id, MessageIn(event_type="a", payload={"n": n}))
    url = f"{server.url}/api/v1/app/{app.id}/endpoint/{ep.id}"
    eventually(
        lambda: httpx.get(url, headers=_auth(server)).json()["circuit"]["state"] == "open",
        what="the circuit opens",
    )
    circuit = httpx.get(url, headers=_auth(server)).json()["circuit"]
    assert circuit["failures"] >= 2 and circuit["nextProbeAt"] > circuit["since"]
    # The operator is told in the log: a warning with the ids and the reason as fields.
    line = next(r for r in caplog.records if getattr(r, "event", "") == "endpoint.circuit.opened")
    assert line.levelname == "WARNING" and "circuit opened" in line.getMessage()
    assert (line.app_id, line.endpoint_id) == (app.id, ep.id)  # type: ignore[attr-defined]
    assert line.reason["code"] == "failed_in_a_row"  # type: ignore[attr-defined]
    # ... and by an operational webhook, signed like any delivery.
    (told,) = receiver.wait_for(1, "/ops")
    event = standardwebhooks.Webhook(ops_secret).verify(told.body, told.headers)
    assert event["type"] == "endpoint.circuit.opened"
    assert (event["data"]["appId"], event["data"]["endpointId"]) == (app.id, ep.id)
    assert event["data"]["failures"] >= 2
    # Open for 30 s: nothing more is sent meanwhile.
    seen = len(receiver.received("/down"))
    time.sleep(0.6)
    assert len(receiver.received("/down")) == seen
    # Re-enabling starts the breaker afresh and sends at once.
    receiver.route("/down", ok())
    httpx.patch(url, json={"disabled": True}, headers=_auth(server))
    httpx.patch(url, json={"disabled": False}, headers=_auth(server))
    assert httpx.get(url, headers=_auth(server)).json()["circuit"]["state"] == "closed"
    receiver.wait_for(seen + 1, "/down")
