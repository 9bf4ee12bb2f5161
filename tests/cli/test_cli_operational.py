"""The operator's commands against a running server, as real subprocesses: operational-webhook
endpoints (the endpoint commands without an application), health, logout, and attempts of
one message to one endpoint."""

from __future__ import annotations

import json

import pytest

from postback import receiver as rx
from tests.support.cli import ok_json, pb
from tests.support.polling import eventually
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_operational_endpoints(server: ServerHandle, app_id: str, receiver: Receiver) -> None:
    hook = receiver.route("/ops", ok())
    made = ok_json(
        server, "operational-endpoint", "create", hook, "-e", "endpoint.created", "--uid", "ops"
    )
    assert made["url"] == hook and made["eventTypes"] == ["endpoint.created"]
    assert [e["id"] for e in ok_json(server, "operational-endpoint", "list")] == [made["id"]]
    assert ok_json(server, "endpoint", "list", app_id) == []  # not one of an app's endpoints
    assert ok_json(server, "operational-endpoint", "get", "ops")["id"] == made["id"]
    shown = pb(server, "operational-endpoint", "secret", "show", "ops")
    assert shown.stdout.strip() == made["secret"]

    # A customer's new endpoint is told to the operator, signed with that secret.
    customer = ok_json(server, "endpoint", "create", app_id, receiver.route("/c", ok()))
    [told] = receiver.wait_for(1, "/ops")
    event = rx.verify(told.body, told.headers, made["secret"])
    assert event["type"] == "endpoint.created" and event["data"]["endpointId"] == customer["id"]

    changed = ok_json(
        server,
        "operational-endpoint",
        "update",
        "ops",
        "--description",
        "pager",
        "--clear",
        "event-types",
    )
    assert changed["description"] == "pager" and not changed["eventTypes"]
    assert ok_json(server, "operational-endpoint", "disable", "ops")["disabled"] is True
    assert ok_json(server, "operational-endpoint", "enable", "ops")["disabled"] is False
    rotated = ok_json(server, "operational-endpoint", "secret", "rotate", "ops")
    assert rotated["key"] != made["secret"]
    ok_json(server, "operational-endpoint", "headers", "set", "ops", "-H", "X-Team:payments")
    assert ok_json(server, "operational-endpoint", "headers", "show", "ops")["headers"] == {
        "X-Team": "payments"
    }
    deleted = pb(server, "operational-endpoint", "delete", "ops")
    assert deleted.returncode == 0 and "deleted endpoint ops" in deleted.stdout
    assert ok_json(server, "operational-endpoint", "list") == []


def test_health_and_logout(server: ServerHandle, app_id: str) -> None:
    assert ok_json(server, "health") == {"url": server.url, "healthy": True}
    down = pb(server, "health", "--url", "http://127.0.0.1:9")
    assert down.returncode == 1 and "cannot reach" in down.stderr

    portal = ok_json(server, "app", "portal", app_id)["token"]
    assert pb(server, "app", "get", app_id, POSTBACK_TOKEN=portal).returncode == 0
    out = pb(server, "logout", "--json", POSTBACK_TOKEN=portal)
    assert out.returncode == 0 and json.loads(out.stdout) == {"loggedOut": True}
    eventually(lambda: pb(server, "app", "get", app_id, POSTBACK_TOKEN=portal).returncode == 1)
    operator = pb(server, "logout")
    assert operator.returncode == 1 and "token revoke" in operator.stderr


def test_attempts_of_one_message_to_one_endpoint(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    a = ok_json(server, "endpoint", "create", app_id, receiver.route("/a", ok()))["id"]
    b = ok_json(server, "endpoint", "create", app_id, receiver.route("/b", ok()))["id"]
    msg = ok_json(server, "send", app_id, "order.paid", "{}")["id"]
    eventually(lambda: len(ok_json(server, "attempts", app_id, "--msg", msg)) == 2)
    only_b = ok_json(server, "attempts", app_id, "--msg", msg, "--endpoint", b)
    assert [r["endpointId"] for r in only_b] == [b]
    assert a != b
