"""postback.receiver on a real delivery: during a secret rotation what postback sends
verifies with both secrets, in our receiver toolkit and in standardwebhooks and svix."""

from __future__ import annotations

import pytest
from svix.api import ApplicationIn, EndpointIn, EndpointSecretRotateIn, MessageIn

from postback.receiver import verify
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle
from tests.unit.test_receiver import NEW, OLD, OTHER, verdicts


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_real_delivery_during_rotation_verifies_with_both_secrets(
    server: ServerHandle,
) -> None:
    client = server.svix()
    with Receiver() as receiver:
        app = client.application.create(ApplicationIn(name="rotation"))
        ep = client.endpoint.create(
            app.id, EndpointIn(url=receiver.route("/hook", ok()), secret=OLD)
        )
        client.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn(key=NEW))
        client.message.create(app.id, MessageIn(event_type="invoice.paid", payload={"n": 1}))
        [got] = receiver.wait_for(1, "/hook")
    assert len(got.headers["webhook-signature"].split()) == 2
    assert got.headers["svix-signature"] == got.headers["webhook-signature"]
    assert verdicts(got.body, got.headers, OLD) == (True, True, True)
    assert verdicts(got.body, got.headers, NEW) == (True, True, True)
    assert verdicts(got.body, got.headers, OTHER) == (False, False, False)
    assert verdicts(got.body + b" ", got.headers, NEW) == (False, False, False)
    assert verify(got.body, got.headers, NEW) == {"n": 1}
