"""The commands for the operations added beside ordered delivery and the svix SDK calls:
an ordered endpoint's key heads, replay-missing and the usage statistics, each against a
running server."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.cli import ok_json, pb, succeeded_with
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle


def test_ordering_heads_are_listed_retried_and_skipped(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    # A failed head waits ten minutes to be tried again (three times): its key is held.
    server = make_server(retry_schedule=(600.0, 600.0, 600.0))
    app = ok_json(server, "app", "create", "Acme")["id"]
    url = receiver.route("/o", fail(500))
    ep = ok_json(server, "endpoint", "create", app, url, "--ordered")["id"]
    first = ok_json(server, "send", app, "invoice.paid", '{"n": 1}', "--ordering-key", "s1")
    second = ok_json(server, "send", app, "invoice.paid", '{"n": 2}', "--ordering-key", "s1")

    def failed_head() -> list[dict] | None:
        heads = ok_json(server, "endpoint", "ordering", "list", app, ep)
        return heads if heads and heads[0]["attempts"] >= 1 else None

    (head,) = eventually(failed_head)
    assert (head["msgId"], head["orderingKey"]) == (first["id"], "s1")
    shown = pb(server, "endpoint", "ordering", "list", app, ep)
    assert shown.returncode == 0 and first["id"] in shown.stdout, shown.stderr

    retried = ok_json(server, "endpoint", "ordering", "retry", app, ep, "--key", "s1")
    assert retried["msgId"] == first["id"]
    receiver.wait_for(2, "/o")  # sent again now, not in ten minutes
    assert {r.headers["webhook-id"] for r in receiver.received("/o")} == {first["id"]}

    # Once the retry has been answered (a 409 while it is in flight), skip the head.
    skipped = eventually(
        lambda: succeeded_with(
            pb(server, "endpoint", "ordering", "skip", app, ep, "--key", "s1", "--json"), "msgId"
        )
    )
    assert "operator token" in skipped.stdout
    # The key's next message is its head now, and goes out.
    eventually(lambda: second["id"] in {r.headers["webhook-id"] for r in receiver.received("/o")})
    missing = pb(server, "endpoint", "ordering", "skip", app, ep, "--key", "nothing-waits")
    assert missing.returncode == 1 and "404" in missing.stderr


def test_replay_missing_and_the_usage_statistics(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    msg = ok_json(server, "send", app_id, "order.paid", '{"a": 1}')["id"]  # no endpoint yet
    ep = ok_json(server, "endpoint", "create", app_id, receiver.route("/r", ok()))["id"]
    task = ok_json(server, "endpoint", "replay-missing", app_id, ep, "--since", "1h")
    assert task["status"] == "finished" and task["data"]["messagesSent"] == 1, task
    (got,) = receiver.wait_for(1, "/r")
    assert got.headers["webhook-id"] == msg
    again = pb(server, "endpoint", "replay-missing", app_id, ep, "--since", "1h")
    assert again.returncode == 0 and "0 messages sent" in again.stdout, again.stderr

    stats = ok_json(server, "stats", "apps", "--since", "1h", "--app", app_id)
    (row,) = stats["data"]["appStats"]
    assert (row["appId"], row["messageDestinations"]) == (app_id, 1)
    table = pb(server, "stats", "apps", "--since", "1h", "--app", app_id, "--app", "nobody")
    assert table.returncode == 0 and app_id in table.stdout and "nobody" in table.stdout
    unknown = pb(server, "stats", "apps", "--since", "1h", "--app", "nobody")
    assert unknown.returncode == 1 and "application" in unknown.stderr

    aggregate = ok_json(server, "stats", "event-types")
    assert aggregate["status"] == "finished", aggregate


def test_an_endpoint_for_one_product(server: ServerHandle, app_id: str) -> None:
    made = ok_json(server, "endpoint", "create", app_id, "http://127.0.0.1:9/p", "--product", "7")
    assert made["product"] == "7"
    moved = ok_json(server, "endpoint", "update", app_id, made["id"], "--product", "8")
    assert moved["product"] == "8"
    every = ok_json(server, "endpoint", "update", app_id, made["id"], "--clear", "product")
    assert every["product"] is None
    shown = pb(server, "endpoint", "get", app_id, made["id"])
    assert shown.returncode == 0 and "product" in shown.stdout


def test_an_event_type_says_where_the_product_is(server: ServerHandle) -> None:
    made = ok_json(
        server, "event-type", "create", "purchase.approved", "--product-path", "data.product.id"
    )
    assert made["productPath"] == "data.product.id"
    moved = ok_json(
        server, "event-type", "update", "purchase.approved", "--product-path", "data.item.id"
    )
    assert moved["productPath"] == "data.item.id"


def test_an_event_type_says_where_the_ordering_key_is(server: ServerHandle) -> None:
    made = ok_json(
        server,
        "event-type",
        "create",
        "subscription.updated",
        "--ordering-key-path",
        "data.subscription.id",
    )
    assert made["orderingKeyPath"] == "data.subscription.id"
    moved = ok_json(
        server, "event-type", "update", "subscription.updated", "--ordering-key-path", "data.id"
    )
    assert moved["orderingKeyPath"] == "data.id"
    app = ok_json(server, "app", "create", "Acme")["id"]
    sent = ok_json(server, "send", app, "subscription.updated", '{"data": {"id": "sub_9"}}')
    assert sent["orderingKey"] == "sub_9"
