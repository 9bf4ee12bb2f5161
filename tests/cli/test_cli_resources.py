"""The resource commands against a running server, as real subprocesses: applications (update,
delete, portal link, token expiry), event types (get, update, delete), endpoints (get,
update with payload filter and projection, delete), the secret, headers, test events, stats
and background tasks."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from postback import receiver as rx
from tests.support.cli import ok_json, pb
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle

# The CLI talks HTTP; which database is behind the server does not change what it does.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _status(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# ---- applications ----------------------------------------------------------------------


def test_app_update_and_delete(server: ServerHandle, app_id: str) -> None:
    changed = ok_json(
        server, "app", "update", "acme", "--name", "Acme Ltd", "--rate", "50", "-m", "tier=gold"
    )
    assert changed["id"] == app_id and changed["name"] == "Acme Ltd"
    assert changed["throttleRate"] == 50 and changed["metadata"] == {"tier": "gold"}
    assert ok_json(server, "app", "get", app_id)["name"] == "Acme Ltd"
    kept = ok_json(server, "app", "update", app_id, "--retention-days", "30")
    assert kept["retentionPeriod"] == 30 and kept["throttleRate"] == 50
    zero = pb(server, "app", "update", app_id, "--retention-days", "0")
    assert zero.returncode == 1 and "retentionPeriod" in zero.stderr
    nothing = pb(server, "app", "update", app_id)
    assert nothing.returncode == 1 and "nothing to change" in nothing.stderr
    bad = pb(server, "app", "update", app_id, "-m", "no-equals-sign")
    assert bad.returncode == 1 and "KEY=VALUE" in bad.stderr

    deleted = pb(server, "app", "delete", app_id)
    assert deleted.returncode == 0 and f"deleted application {app_id}" in deleted.stdout
    gone = pb(server, "app", "get", app_id)
    assert gone.returncode == 1 and "(404)" in gone.stderr
    assert pb(server, "app", "delete", app_id, "--json").returncode == 1


def test_app_portal_link_and_expire_tokens(server: ServerHandle, app_id: str) -> None:
    link = pb(server, "app", "portal", "acme", COLUMNS="60")
    assert link.returncode == 0, link.stderr
    url = link.stdout.strip()
    # One line, whole, even on a narrow terminal: it is meant to be copied.
    assert "\n" not in url and url.startswith(server.url) and "/portal/#token=" in url
    token = url.split("#token=")[1]
    assert _status(f"{server.url}/api/v1/app/{app_id}", token) == 200

    access = ok_json(server, "app", "portal", app_id, "--read-only", "--expiry", "600")
    assert access["url"].endswith(access["token"])
    other = ok_json(server, "app", "create", "Other")["id"]
    # A portal token is for its own application only.
    assert _status(f"{server.url}/api/v1/app/{other}", access["token"]) in (401, 403, 404)

    ended = ok_json(server, "app", "expire-tokens", app_id)
    assert ended == {"id": app_id, "expiresIn": 0}
    eventually(lambda: _status(f"{server.url}/api/v1/app/{app_id}", token) == 401)


# ---- event types -------------------------------------------------------------------------


def test_event_type_get_update_delete(server: ServerHandle, tmp_path: Path) -> None:
    ok_json(server, "event-type", "create", "invoice.paid", "--description", "Paid")
    got = ok_json(server, "event-type", "get", "invoice.paid")
    assert got["name"] == "invoice.paid" and got["description"] == "Paid"
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["id"]}))
    changed = ok_json(
        server,
        "event-type",
        "update",
        "invoice.paid",
        "--description",
        "An invoice was paid",
        "--group",
        "billing",
        "--schema",
        str(schema),
        "--deprecated",
    )
    assert changed["description"] == "An invoice was paid" and changed["groupName"] == "billing"
    assert changed["deprecated"] is True and changed["schemas"]["1"]["required"] == ["id"]
    table = pb(server, "event-type", "get", "invoice.paid")
    assert table.returncode == 0 and "deprecated" in table.stdout and "billing" in table.stdout

    archived = pb(server, "event-type", "delete", "invoice.paid")
    assert archived.returncode == 0 and "archived event type invoice.paid" in archived.stdout
    assert ok_json(server, "event-type", "list") == []
    [listed] = ok_json(server, "event-type", "list", "--archived")
    assert listed["archived"] is True
    back = ok_json(server, "event-type", "update", "invoice.paid", "--unarchived")
    assert back["archived"] is False

    assert ok_json(server, "event-type", "delete", "invoice.paid", "--expunge") == {
        "name": "invoice.paid",
        "deleted": True,
    }
    gone = pb(server, "event-type", "get", "invoice.paid")
    assert gone.returncode == 1 and "(404)" in gone.stderr


# ---- endpoints ---------------------------------------------------------------------------

ONE_PRODUCT = '{"data.product.id": "p1"}'


def test_endpoint_filter_projection_get_update_delete(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    hook = receiver.route("/one", ok())
    created = ok_json(
        server,
        "endpoint",
        "create",
        app_id,
        hook,
        "--uid",
        "affiliate",
        "--filter",
        ONE_PRODUCT,
        "--projection",
        '{"exclude": ["/data/buyer"]}',
        "--max-in-flight",
        "5",
    )
    assert created["filter"] == {"data.product.id": "p1"}
    assert created["projection"] == {"exclude": ["/data/buyer"]}
    got = ok_json(server, "endpoint", "get", app_id, "affiliate")
    assert got["id"] == created["id"] and got["maxInFlight"] == 5

    def send(product: str) -> str:
        payload = {"product": {"id": product}, "buyer": {"email": "a@example.com"}}
        body = json.dumps({"type": "purchase", "data": payload})
        return ok_json(server, "send", app_id, "purchase.approved", body)["id"]

    send("p2")  # filtered out
    first = send("p1")
    [delivered] = receiver.wait_for(1, "/one")
    body = rx.verify(delivered.body, delivered.headers, created["secret"])
    assert body["data"] == {"product": {"id": "p1"}}  # the buyer projected away
    assert delivered.headers["webhook-id"] == first

    changed = ok_json(
        server,
        "endpoint",
        "update",
        app_id,
        "affiliate",
        "--clear",
        "filter",
        "--clear",
        "projection",
        "--description",
        "every product",
        "-e",
        "purchase.approved",
    )
    assert changed["filter"] is None and changed["projection"] is None
    assert changed["description"] == "every product"
    assert changed["eventTypes"] == ["purchase.approved"]
    send("p3")
    later = receiver.wait_for(2, "/one")[-1]
    assert json.loads(later.body)["data"]["buyer"] == {"email": "a@example.com"}

    moved = ok_json(
        server, "endpoint", "update", app_id, "affiliate", "--endpoint-url", hook + "?v=2"
    )
    assert moved["url"] == hook + "?v=2"
    both = pb(
        server, "endpoint", "update", app_id, "affiliate", "--clear", "filter", "--filter", "{}"
    )
    assert both.returncode == 1 and "give one" in both.stderr
    not_json = pb(server, "endpoint", "update", app_id, "affiliate", "--filter", "{oops")
    assert not_json.returncode == 1 and "--filter is not JSON" in not_json.stderr
    refused = pb(server, "endpoint", "update", app_id, "affiliate", "--filter", '{"$nope": 1}')
    assert refused.returncode == 1 and "(422)" in refused.stderr

    deleted = pb(server, "endpoint", "delete", app_id, "affiliate")
    assert deleted.returncode == 0 and "deleted endpoint affiliate" in deleted.stdout
    assert ok_json(server, "endpoint", "list", app_id) == []
    gone = pb(server, "endpoint", "get", app_id, created["id"])
    assert gone.returncode == 1 and "(404)" in gone.stderr


def test_endpoint_secret_show_and_rotate(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    hook = receiver.route("/rot", ok())
    created = ok_json(server, "endpoint", "create", app_id, hook)
    ep = created["id"]
    shown = pb(server, "endpoint", "secret", "show", app_id, ep)
    assert shown.returncode == 0 and shown.stdout.strip() == created["secret"]

    rotated = pb(server, "endpoint", "secret", "rotate", app_id, ep)
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new.startswith("whsec_") and new != created["secret"]
    assert ok_json(server, "endpoint", "secret", "show", app_id, ep) == {"id": ep, "key": new}
    # Deliveries verify with the new secret (and, in the grace period, the old one).
    ok_json(server, "send", app_id, "order.paid", '{"n": 1}')
    [got] = receiver.wait_for(1, "/rot")
    assert rx.verify(got.body, got.headers, new) == {"n": 1}
    assert rx.verify(got.body, got.headers, created["secret"]) == {"n": 1}

    chosen = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    mine = ok_json(
        server, "endpoint", "secret", "rotate", app_id, ep, "--key", chosen, "--grace", "0"
    )
    assert mine == {"id": ep, "key": chosen}
    bad = pb(server, "endpoint", "secret", "rotate", app_id, ep, "--key", "not-a-secret")
    assert bad.returncode == 1 and "(422)" in bad.stderr


def test_endpoint_headers(server: ServerHandle, app_id: str, receiver: Receiver) -> None:
    hook = receiver.route("/hdr", ok())
    ep = ok_json(server, "endpoint", "create", app_id, hook)["id"]
    done = pb(
        server,
        "endpoint",
        "headers",
        "set",
        app_id,
        ep,
        "-H",
        "X-Shop: 42",
        "-H",
        "Authorization:Bearer s3cret",
    )
    assert done.returncode == 0 and f"headers of {ep} updated" in done.stdout
    shown = ok_json(server, "endpoint", "headers", "show", app_id, ep)
    assert shown == {"headers": {"X-Shop": "42"}, "sensitive": ["Authorization"]}
    table = pb(server, "endpoint", "headers", "show", app_id, ep)
    assert "X-Shop" in table.stdout and "(hidden)" in table.stdout and "s3cret" not in table.stdout

    ok_json(server, "send", app_id, "order.paid", "{}")
    [got] = receiver.wait_for(1, "/hdr")
    assert got.headers["x-shop"] == "42" and got.headers["authorization"] == "Bearer s3cret"

    removed = ok_json(server, "endpoint", "headers", "set", app_id, ep, "--remove", "x-shop")
    assert removed["removed"] == ["x-shop"]
    assert ok_json(server, "endpoint", "headers", "show", app_id, ep)["headers"] == {}
    ok_json(server, "endpoint", "headers", "set", app_id, ep, "--replace", "-H", "X-Only:1")
    assert ok_json(server, "endpoint", "headers", "show", app_id, ep) == {
        "headers": {"X-Only": "1"},
        "sensitive": [],
    }
    bad = pb(server, "endpoint", "headers", "set", app_id, ep, "-H", "no-colon")
    assert bad.returncode == 1 and "NAME:VALUE" in bad.stderr


def test_endpoint_test_event_and_stats(
    server: ServerHandle, app_id: str, receiver: Receiver, tmp_path: Path
) -> None:
    schema = tmp_path / "schema.json"
    example = {"invoice": {"id": "in_example", "total": 990}}
    schema.write_text(json.dumps({"type": "object", "examples": [example]}))
    ok_json(server, "event-type", "create", "invoice.paid", "--schema", str(schema))
    good = ok_json(server, "endpoint", "create", app_id, receiver.route("/t", ok()))["id"]
    other = ok_json(server, "endpoint", "create", app_id, receiver.route("/other", ok()))["id"]

    sent = pb(server, "endpoint", "test", app_id, good, "invoice.paid")
    assert sent.returncode == 0, sent.stderr
    msg = sent.stdout.split()[2]
    assert msg.startswith("msg_")
    [got] = receiver.wait_for(1, "/t")
    assert json.loads(got.body) == example and got.headers["webhook-id"] == msg
    own = ok_json(server, "endpoint", "test", app_id, good, "invoice.paid", "--payload", '{"x": 1}')
    assert own["payload"] == {"x": 1}
    receiver.wait_for(2, "/t")
    assert receiver.received("/other") == []  # a test event goes to that endpoint alone
    unknown = pb(server, "endpoint", "test", app_id, good, "no.such.type")
    assert unknown.returncode == 1 and "(422)" in unknown.stderr

    stats = eventually(
        lambda: (s := ok_json(server, "endpoint", "stats", app_id, good))["success"] == 2 and s
    )
    assert stats["fail"] == 0 and stats["pending"] == 0
    assert ok_json(server, "endpoint", "stats", app_id, other, "--since", "1h")["success"] == 0
    table = pb(server, "endpoint", "stats", app_id, good)
    assert table.returncode == 0 and "success" in table.stdout and "2" in table.stdout


def test_recover_without_waiting_then_task_get_and_list(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    path = "/down"
    receiver.route(path, fail(503))
    ep = ok_json(server, "endpoint", "create", app_id, receiver.url + path)["id"]
    ok_json(server, "send", app_id, "order.paid", "{}")
    eventually(lambda: ok_json(server, "endpoint", "stats", app_id, ep)["fail"] == 1)
    receiver.route(path, ok())

    task = ok_json(server, "endpoint", "recover", app_id, ep, "--since", "1h", "--no-wait")
    assert task["id"].startswith("qtask_") and task["failed"] == 1
    done = eventually(
        lambda: (t := ok_json(server, "task", "get", task["id"]))["status"] == "finished" and t
    )
    assert done["data"]["recovered"] == 1
    assert [t["id"] for t in ok_json(server, "task", "list")] == [task["id"]]
    table = pb(server, "task", "list")
    assert task["id"] in table.stdout and "finished" in table.stdout
    receiver.wait_for(1, path)
    missing = pb(server, "task", "get", "qtask_nope")
    assert missing.returncode == 1 and "(404)" in missing.stderr


def test_endpoint_ordered_and_send_with_an_ordering_key(server: ServerHandle, app_id: str) -> None:
    made = ok_json(server, "endpoint", "create", app_id, "http://127.0.0.1:9/o", "--ordered")
    assert made["ordered"] is True
    off = ok_json(server, "endpoint", "update", app_id, made["id"], "--unordered")
    assert off["ordered"] is False
    sent = ok_json(server, "send", app_id, "invoice.paid", "{}", "--ordering-key", "sub_1")
    assert sent["orderingKey"] == "sub_1"
