"""The real `postback` command, run as a subprocess against a running server: applications,
event types and catalogs, endpoints, sending, attempts, recover."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from postback import receiver as rx
from tests.support.cli import (
    at_least,
    ok_json,
    pb,
    succeeded_with,
)
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle

# The CLI talks HTTP; which database is behind the server does not change what it does.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# ---- applications, errors ------------------------------------------------------------


def test_app_create_list_get(server: ServerHandle, app_id: str) -> None:
    listed = ok_json(server, "app", "list")
    assert [a["id"] for a in listed] == [app_id]
    table = pb(server, "app", "get", "acme")
    assert table.returncode == 0
    assert app_id in table.stdout and "Acme" in table.stdout
    assert ok_json(server, "app", "get", app_id)["uid"] == "acme"


def test_errors_print_the_api_detail_and_exit_non_zero(server: ServerHandle) -> None:
    missing = pb(server, "app", "get", "nope")
    assert missing.returncode == 1
    assert "application 'nope' not found" in missing.stderr
    assert "(404)" in missing.stderr
    bad_token = pb(server, "app", "list", POSTBACK_TOKEN="pb_wrong")
    assert bad_token.returncode == 1
    assert "invalid, revoked or expired token" in bad_token.stderr
    taken = pb(server, "app", "create", "Again", "--uid", "dup")
    assert taken.returncode == 0
    again = pb(server, "app", "create", "Again", "--uid", "dup")
    assert again.returncode == 1 and "(409)" in again.stderr
    invalid = pb(server, "endpoint", "create", "dup", "not a url")
    assert invalid.returncode == 1 and "url" in invalid.stderr.lower()
    no_token = pb(None, "app", "list", "--url", server.url)
    assert no_token.returncode == 1 and "no token" in no_token.stderr
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    down = pb(server, "app", "list", "--url", f"http://127.0.0.1:{port}")
    assert down.returncode == 1 and "cannot reach" in down.stderr


# ---- event types ---------------------------------------------------------------------

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"id": {"type": "string"}},
    "required": ["id"],
    "examples": [{"id": "inv_1"}, {"id": "inv_2"}],
}


def test_event_type_create_and_list(server: ServerHandle, tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    made = ok_json(
        server,
        "event-type",
        "create",
        "invoice.paid",
        "--description",
        "An invoice was paid",
        "--schema",
        str(schema),
        "--group",
        "invoice",
    )
    assert made["schemas"]["1"]["examples"] == SCHEMA["examples"]
    listed = ok_json(server, "event-type", "list")
    assert [(e["name"], e["groupName"]) for e in listed] == [("invoice.paid", "invoice")]
    table = pb(server, "event-type", "list").stdout
    assert "invoice.paid" in table and "An invoice was paid" in table
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    refused = pb(server, "event-type", "create", "x.y", "--schema", str(broken))
    assert refused.returncode == 1 and "not JSON" in refused.stderr


def test_event_type_import_creates_then_updates(server: ServerHandle, tmp_path: Path) -> None:
    ok_json(server, "event-type", "create", "invoice.paid", "--description", "old words")
    catalog = {
        "name": "billing-test",
        "description": "a small catalog",
        "eventTypes": [
            {
                "name": "invoice.paid",
                "description": "An invoice was paid",
                "groupName": "invoice",
                "schemas": {"1": SCHEMA},
            },
            {
                "name": "invoice.voided",
                "description": "An invoice was voided",
                "featureFlag": "beta",
                "schemas": {"1": SCHEMA | {"examples": [{"id": "inv_9"}]}},
            },
        ],
    }
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    done = pb(server, "event-type", "import", str(path))
    assert done.returncode == 0, done.stderr
    assert "catalog billing-test" in done.stdout
    assert "1 created, 1 updated, 0 failed" in done.stdout
    stored = {e["name"]: e for e in ok_json(server, "event-type", "list")}
    assert stored["invoice.paid"]["description"] == "An invoice was paid"
    assert stored["invoice.paid"]["schemas"]["1"]["examples"] == SCHEMA["examples"]
    assert stored["invoice.voided"]["featureFlags"] == ["beta"]
    # Importing again only updates; --json gives the per-type results.
    again = ok_json(server, "event-type", "import", str(path))
    assert [(r["name"], r["result"], r["examples"]) for r in again] == [
        ("invoice.paid", "updated", 2),
        ("invoice.voided", "updated", 1),
    ]


def test_event_type_import_reports_bad_entries(server: ServerHandle, tmp_path: Path) -> None:
    catalog = {
        "name": "mixed",
        "eventTypes": [
            {"name": "good.one", "description": "fine"},
            {"name": "bad name!", "description": "spaces are not allowed"},
        ],
    }
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    done = pb(server, "event-type", "import", str(path))
    assert done.returncode == 1
    assert "1 created, 0 updated, 1 failed" in done.stdout
    assert "name" in done.stdout  # the API's reason is in the detail column
    not_catalog = tmp_path / "list.json"
    not_catalog.write_text("[1, 2]")
    refused = pb(server, "event-type", "import", str(not_catalog))
    assert refused.returncode == 1 and "not a catalog" in refused.stderr


# ---- endpoints, send, attempts -------------------------------------------------------


def test_endpoint_create_send_three_ways_and_attempts(
    server: ServerHandle, app_id: str, receiver: Receiver, tmp_path: Path
) -> None:
    hook = receiver.route("/hook", ok())
    created = pb(server, "endpoint", "create", app_id, hook, "-e", "invoice.paid")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.split("signing secret:")[1].split()[0]
    assert secret.startswith("whsec_")
    [endpoint] = ok_json(server, "endpoint", "list", app_id)
    assert endpoint["url"] == hook
    payload_file = tmp_path / "payload.json"
    payload_file.write_text('{"from": "file"}')
    sent = [
        pb(server, "send", app_id, "invoice.paid", '{"from": "argument"}'),
        pb(server, "send", app_id, "invoice.paid", "--file", str(payload_file)),
        pb(server, "send", app_id, "invoice.paid", stdin='{"from": "stdin"}'),
        pb(server, "send", app_id, "invoice.paid", "-", stdin='{"from": "dash"}'),
    ]
    assert all(s.returncode == 0 for s in sent), [s.stderr for s in sent]
    msg_ids = [s.stdout.split()[1] for s in sent]
    assert all(m.startswith("msg_") for m in msg_ids)
    got = receiver.wait_for(4, "/hook")
    # What arrived is signed with the secret the CLI printed.
    bodies = sorted(rx.verify(r.body, r.headers, secret)["from"] for r in got)
    assert bodies == ["argument", "dash", "file", "stdin"]
    # A filtered-out event type is accepted but goes nowhere.
    assert pb(server, "send", app_id, "other.type", "{}").returncode == 0

    table = eventually(
        lambda: succeeded_with(pb(server, "attempts", app_id, "--msg", msg_ids[0]), "200")
    )
    assert msg_ids[0] in table.stdout and "success" in table.stdout
    by_endpoint = eventually(
        lambda: at_least(ok_json(server, "attempts", app_id, "--endpoint", endpoint["id"]), 4)
    )
    assert {a["msgId"] for a in by_endpoint} == set(msg_ids)
    assert {a["responseStatusCode"] for a in by_endpoint} == {200}
    neither = pb(server, "attempts", app_id)
    assert neither.returncode == 1 and "give --msg, --endpoint, or both" in neither.stderr


def test_send_refuses_bad_payloads(server: ServerHandle, app_id: str) -> None:
    not_json = pb(server, "send", app_id, "invoice.paid", "{oops")
    assert not_json.returncode == 1 and "not JSON" in not_json.stderr
    not_object = pb(server, "send", app_id, "invoice.paid", "[1]")
    assert not_object.returncode == 1 and "JSON object" in not_object.stderr
    no_app = pb(server, "send", "app_missing", "invoice.paid", "{}")
    assert no_app.returncode == 1 and "not found" in no_app.stderr


def test_bulk_send_from_json_lines(
    server: ServerHandle, app_id: str, receiver: Receiver, tmp_path: Path
) -> None:
    ok_json(server, "endpoint", "create", app_id, receiver.route("/bulk", ok()))
    lines = [json.dumps({"n": n}) for n in range(3)]  # bare payloads: type from the argument
    lines.append(json.dumps({"eventType": "order.shipped", "payload": {"n": 3}}))
    lines.append(json.dumps({"payload": {"n": 4}, "eventId": "evt-4"}))
    lines.append("")
    lines.append("this line is not json")
    path = tmp_path / "messages.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = pb(server, "send", app_id, "order.paid", "--bulk", str(path))
    assert done.returncode == 1  # one bad line
    assert "sent 5 of 6 messages" in done.stdout
    assert "line 7" in done.stderr
    got = receiver.wait_for(5, "/bulk")
    payloads = sorted(json.loads(r.body)["n"] for r in got)
    assert payloads == [0, 1, 2, 3, 4]
    assert len(receiver.received("/bulk")) == 5
    shared_id = pb(server, "send", app_id, "order.paid", "--bulk", str(path), "--event-id", "x")
    assert shared_id.returncode == 1 and "eventId on each line" in shared_id.stderr


def test_disable_enable_and_recover(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    server = make_server(retry_schedule=(0.05,))
    app = ok_json(server, "app", "create", "Recovering")["id"]
    path = "/flaky"
    receiver.route(path, fail(503))
    ep = ok_json(server, "endpoint", "create", app, receiver.url + path)["id"]
    for n in range(3):
        assert pb(server, "send", app, "order.paid", json.dumps({"n": n})).returncode == 0
    # Two attempts each (one retry), then the deliveries fail.
    eventually(
        lambda: len(ok_json(server, "attempts", app, "--endpoint", ep, "--limit", "10")) >= 6
    )
    eventually(lambda: server.call(lambda s: s.endpoint_stats(app, ep, None, None))["fail"] == 3)

    receiver.route(path, ok())
    disabled = pb(server, "endpoint", "disable", app, ep)
    assert disabled.returncode == 0 and f"{ep} disabled" in disabled.stdout
    assert ok_json(server, "endpoint", "list", app)[0]["disabled"] is True
    enabled = pb(server, "endpoint", "enable", app, ep)
    assert enabled.returncode == 0 and f"{ep} enabled" in enabled.stdout

    recovered = pb(server, "endpoint", "recover", app, ep, "--since", "1h")
    assert recovered.returncode == 0, recovered.stderr
    assert "3 failed deliveries in the window" in recovered.stdout
    assert "recovered 3 deliveries" in recovered.stdout
    eventually(lambda: len([r for r in receiver.received(path)]) >= 9)
    bad = pb(server, "endpoint", "recover", app, ep, "--since", "last tuesday")
    assert bad.returncode == 1 and "not a duration or an ISO time" in bad.stderr
