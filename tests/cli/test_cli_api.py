"""Every operation of the API has a command (issue 21, item 6): a table of postback's own
routes (its /openapi.json) and the command that does each, checked both ways; and, as real
subprocesses against a live server, the commands for the last operations that had none:
an attempt's answer erased, the events feed followed as it streams, an endpoint's mTLS and
OAuth2 credentials changed and removed, an operational endpoint's ordering heads; and the
attempts of a recovery labelled as such."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import typer

from postback import cli
from tests.cli.test_cli_output import _commands
from tests.support.cli import POSTBACK, env_for, ok_json, pb
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle
from tests.support.svix_spec import app_routes
from tests.support.tls_certs import CertificateAuthority

APP = "/api/v1/app/{app_id}"
EP = APP + "/endpoint/{endpoint_id}"
MSG = APP + "/msg/{msg_id}"
OPS = "/api/v1/operational-webhook/endpoint"

# (method, path) → the command that does it. PUT and PATCH of one resource are both its
# `update`; an endpoint's credentials are read by `endpoint get` and set or removed by
# `endpoint update` (--client-cert …, --oauth-…, --clear mtls / oauth).
COMMAND_OF: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/api/v1/app"): ("app", "list"),
    ("POST", "/api/v1/app"): ("app", "create"),
    ("GET", APP): ("app", "get"),
    ("PUT", APP): ("app", "update"),
    ("PATCH", APP): ("app", "update"),
    ("DELETE", APP): ("app", "delete"),
    ("GET", APP + "/attempt/endpoint/{endpoint_id}"): ("attempts",),
    ("GET", APP + "/attempt/msg/{msg_id}"): ("attempts",),
    ("GET", APP + "/endpoint"): ("endpoint", "list"),
    ("POST", APP + "/endpoint"): ("endpoint", "create"),
    ("GET", EP): ("endpoint", "get"),
    ("PUT", EP): ("endpoint", "update"),
    ("PATCH", EP): ("endpoint", "update"),
    ("DELETE", EP): ("endpoint", "delete"),
    ("GET", EP + "/headers"): ("endpoint", "headers", "show"),
    ("PUT", EP + "/headers"): ("endpoint", "headers", "set"),
    ("PATCH", EP + "/headers"): ("endpoint", "headers", "set"),
    ("GET", EP + "/msg"): ("endpoint", "messages"),
    ("GET", EP + "/mtls"): ("endpoint", "get"),
    ("PUT", EP + "/mtls"): ("endpoint", "update"),
    ("DELETE", EP + "/mtls"): ("endpoint", "update"),
    ("GET", EP + "/oauth"): ("endpoint", "get"),
    ("PUT", EP + "/oauth"): ("endpoint", "update"),
    ("DELETE", EP + "/oauth"): ("endpoint", "update"),
    ("GET", EP + "/ordering"): ("endpoint", "ordering", "list"),
    ("POST", EP + "/ordering/retry"): ("endpoint", "ordering", "retry"),
    ("POST", EP + "/ordering/skip"): ("endpoint", "ordering", "skip"),
    ("POST", EP + "/recover"): ("endpoint", "recover"),
    ("POST", EP + "/replay-missing"): ("endpoint", "replay-missing"),
    ("GET", EP + "/secret"): ("endpoint", "secret", "show"),
    ("POST", EP + "/secret/rotate"): ("endpoint", "secret", "rotate"),
    ("POST", EP + "/send-example"): ("endpoint", "test"),
    ("GET", EP + "/stats"): ("endpoint", "stats"),
    ("GET", EP + "/attempt-stats"): ("endpoint", "stats"),  # --attempts
    ("GET", APP + "/events"): ("events",),
    ("GET", APP + "/events/stream"): ("events",),  # --follow
    ("GET", APP + "/msg"): ("message", "list"),
    ("POST", APP + "/msg"): ("send",),
    ("GET", MSG): ("message", "get"),
    ("GET", MSG + "/attempt/{attempt_id}"): ("attempt", "get"),
    ("DELETE", MSG + "/attempt/{attempt_id}/content"): ("attempt", "expunge"),
    ("DELETE", MSG + "/content"): ("message", "expunge"),
    ("GET", MSG + "/endpoint"): ("message", "endpoints"),
    ("POST", MSG + "/endpoint/{endpoint_id}/resend"): ("resend",),
    ("POST", "/api/v1/auth/app-portal-access/{app_id}"): ("app", "portal"),
    ("POST", "/api/v1/auth/app/{app_id}/expire-all"): ("app", "expire-tokens"),
    ("POST", "/api/v1/auth/logout"): ("logout",),
    ("GET", "/api/v1/background-task"): ("task", "list"),
    ("GET", "/api/v1/background-task/{task_id}"): ("task", "get"),
    ("GET", "/api/v1/event-type"): ("event-type", "list"),
    ("POST", "/api/v1/event-type"): ("event-type", "create"),
    ("GET", "/api/v1/event-type/{event_type_name}"): ("event-type", "get"),
    ("PUT", "/api/v1/event-type/{event_type_name}"): ("event-type", "update"),
    ("PATCH", "/api/v1/event-type/{event_type_name}"): ("event-type", "update"),
    ("DELETE", "/api/v1/event-type/{event_type_name}"): ("event-type", "delete"),
    ("GET", "/api/v1/health"): ("health",),
    ("HEAD", "/api/v1/health"): ("health",),
    ("GET", "/api/v1/health/ping"): ("health",),
    ("HEAD", "/api/v1/health/ping"): ("health",),
    ("POST", "/api/v1/stats/usage/app"): ("stats", "apps"),
    ("PUT", "/api/v1/stats/usage/event-types"): ("stats", "event-types"),
}
# The operator's own endpoints: the endpoint commands without the application (an
# application's endpoints alone have messages, recovery, replays, test events and stats).
APP_ONLY = ("/msg", "/recover", "/replay-missing", "/send-example", "/stats", "/attempt-stats")
COMMAND_OF |= {
    (method, OPS + path.removeprefix(APP + "/endpoint")): ("operational-endpoint", *command[1:])
    for (method, path), command in list(COMMAND_OF.items())
    if path.startswith(APP + "/endpoint") and not path.endswith(APP_ONLY)
}


def test_every_api_operation_has_a_command() -> None:
    routes = set(app_routes())
    assert sorted(routes - set(COMMAND_OF)) == [], "operations without a command"
    assert sorted(set(COMMAND_OF) - routes) == [], "the table names routes that are gone"
    commands = set(_commands(typer.main.get_command(cli.app)))
    assert sorted(set(COMMAND_OF.values()) - commands) == []


# The CLI talks HTTP; which database is behind the server does not change what it does.
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE
def test_attempt_expunge_and_a_recovery_labelled_as_one(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    receiver.route("/down", fail(503, "the receiver's private answer"))
    ep = ok_json(server, "endpoint", "create", app_id, receiver.url + "/down")["id"]
    msg = ok_json(server, "send", app_id, "order.paid", "{}")["id"]
    eventually(lambda: ok_json(server, "endpoint", "stats", app_id, ep)["fail"] == 1)
    receiver.route("/down", ok(body="recovered"))
    ok_json(server, "endpoint", "recover", app_id, ep, "--since", "1h")

    def four() -> list[dict] | None:
        rows = ok_json(server, "attempts", app_id, "--msg", msg)
        return rows if len(rows) == 4 else None

    # Three attempts on the test schedule, then the recovery's.
    rows = eventually(four, what="the recovery's attempt")
    assert sorted(r["trigger"] for r in rows) == ["recovery", *["scheduled"] * 3]
    assert sorted(r["triggerType"] for r in rows) == [0] * 4  # Svix's two values only
    table = pb(server, "attempts", app_id, "--msg", msg)
    assert table.returncode == 0 and table.stdout.count("recovery") == 1, table.stdout

    failed = next(r for r in rows if r["trigger"] == "scheduled")
    whole = ok_json(server, "attempt", "get", app_id, msg, failed["id"])
    assert whole["response"] == "the receiver's private answer"
    erased = ok_json(server, "attempt", "expunge", app_id, msg, failed["id"])
    assert erased == {"id": failed["id"], "msgId": msg, "expunged": True}
    assert ok_json(server, "attempt", "get", app_id, msg, failed["id"])["response"] == "EXPUNGED"
    recovered = next(r for r in rows if r["trigger"] == "recovery")
    kept = ok_json(server, "attempt", "get", app_id, msg, recovered["id"])
    assert kept["response"] == "recovered"  # only that attempt's answer is erased
    gone = pb(server, "attempt", "expunge", app_id, msg, "atmpt_nope")
    assert gone.returncode == 1 and "(404)" in gone.stderr


@SQLITE
def test_events_follow_prints_messages_as_they_arrive(server: ServerHandle, app_id: str) -> None:
    before = ok_json(server, "send", app_id, "order.paid", '{"n": 0}', "--event-id", "ev-0")
    cursor = ok_json(server, "events", app_id)["iterator"]
    follow = subprocess.Popen(
        [POSTBACK, "events", app_id, "--after", cursor, "--follow", "--count", "2", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(server),
    )
    try:
        assert "following the events feed" in follow.stderr.readline()  # type: ignore[union-attr]
        sent = [
            ok_json(server, "send", app_id, "order.paid", f'{{"n": {n}}}', "--event-id", f"ev-{n}")
            for n in (1, 2)
        ]
        lines = [json.loads(follow.stdout.readline()) for _ in sent]  # type: ignore[union-attr]
        assert follow.wait(timeout=30) == 0
        rest = follow.stderr.read()  # type: ignore[union-attr]
    finally:
        follow.kill()
    assert [m["id"] for m in lines] == [m["id"] for m in sent]  # not the one sent before
    assert before["id"] not in {m["id"] for m in lines}
    assert [m["payload"] for m in lines] == [{"n": 1}, {"n": 2}]
    # The cursor to carry on from: the feed after it holds nothing of what was printed.
    assert f"next: --after {lines[-1]['cursor']}" in rest
    after = ok_json(server, "events", app_id, "--after", lines[-1]["cursor"])
    assert after["data"] == []
    # People get a line a message, its id and event id whole.
    table = pb(server, "events", app_id, "--after", cursor, "--follow", "--count", "1")
    assert table.returncode == 0 and sent[0]["id"] in table.stdout and "ev-1" in table.stdout


@SQLITE
def test_endpoint_update_sets_and_removes_its_credentials(
    server: ServerHandle, app_id: str, tmp_path: Path
) -> None:
    authority = CertificateAuthority("cli client CA")
    client = authority.issue("cli-sender")
    (tmp_path / "client.crt").write_text(client.cert_pem)
    (tmp_path / "client.key").write_text(client.key_pem)
    (tmp_path / "ca.pem").write_text(authority.pem)
    ep = ok_json(server, "endpoint", "create", app_id, "https://hooks.example/h")["id"]
    assert ok_json(server, "endpoint", "get", app_id, ep)["mtls"]["enabled"] is False

    certificate = [
        "--client-cert", str(tmp_path / "client.crt"),
        "--client-key", str(tmp_path / "client.key"),
        "--ca-bundle", str(tmp_path / "ca.pem"),
    ]  # fmt: skip
    updated = ok_json(server, "endpoint", "update", app_id, ep, *certificate)
    assert updated["mtls"]["config"]["subject"] == "CN=cli-sender,O=postback tests"
    assert updated["mtls"]["config"]["caBundle"]["certificates"] == 1
    oauth = [
        "--oauth-token-url", "http://127.0.0.1:9/token", "--oauth-client-id", "cli",
        "--oauth-scope", "orders",
    ]  # fmt: skip
    both = ok_json(
        server, "endpoint", "update", app_id, ep, *oauth, POSTBACK_OAUTH_CLIENT_SECRET="s3cret"
    )
    assert both["oauth"]["config"]["clientId"] == "cli"
    assert both["oauth"]["config"]["tokenUrl"] == "http://127.0.0.1:9/token"
    assert both["mtls"]["config"]["subject"] == "CN=cli-sender,O=postback tests"  # kept
    shown = pb(server, "endpoint", "get", app_id, ep)
    assert (
        "mTLS CN=cli-sender" in shown.stdout and "OAuth2 http://127.0.0.1:9/token" in shown.stdout
    )
    assert "s3cret" not in shown.stdout and "PRIVATE KEY" not in shown.stdout

    cleared = ok_json(server, "endpoint", "update", app_id, ep, "--clear", "mtls")
    assert cleared["mtls"]["enabled"] is False and cleared["oauth"]["config"]["clientId"] == "cli"
    cleared = ok_json(server, "endpoint", "update", app_id, ep, "--clear", "oauth")
    assert cleared["oauth"]["enabled"] is False
    both_ways = pb(server, "endpoint", "update", app_id, ep, *certificate, "--clear", "mtls")
    assert both_ways.returncode == 1 and "give one" in both_ways.stderr


@SQLITE
def test_an_operational_endpoints_ordering_heads(make_server: Callable[..., ServerHandle]) -> None:
    server = make_server(retry_schedule=(60, 60))  # a failed head stays blocked
    ops = ok_json(server, "operational-endpoint", "create", "http://127.0.0.1:9/ops", "--ordered")[
        "id"
    ]
    # Creating a customer's endpoint sends it an endpoint.created, which fails: its head.
    shop = ok_json(server, "app", "create", "Shop")["id"]
    ok_json(server, "endpoint", "create", shop, "http://127.0.0.1:9/shop")

    def head_tried(times: int) -> dict | None:
        heads = ok_json(server, "operational-endpoint", "ordering", "list", ops)
        return heads[0] if len(heads) == 1 and heads[0]["attempts"] == times else None

    head = eventually(lambda: head_tried(1), what="the operational webhook's failed head")
    retried = ok_json(server, "operational-endpoint", "ordering", "retry", ops)
    assert retried["msgId"] == head["msgId"]
    eventually(lambda: head_tried(2), what="the head sent again at once")
    skipped = ok_json(server, "operational-endpoint", "ordering", "skip", ops)
    assert skipped["msgId"] == head["msgId"] and skipped["statusText"] == "canceled"
    assert ok_json(server, "operational-endpoint", "ordering", "list", ops) == []
