"""The API operations this round added, as commands: an ordered endpoint's key heads
(``endpoint ordering list|retry|skip``), replaying what an endpoint never got
(``endpoint replay-missing``) and the usage statistics (``stats apps|event-types``), the
last two background tasks followed to their end like ``endpoint recover``."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from postback.cli.client import quote
from postback.cli.common import (
    AppArg,
    Client,
    Column,
    Out,
    client_command,
    console,
    fail,
    ident,
    print_json,
    short_time,
    when,
)
from postback.cli.endpoints import EndpointArg, endpoint_cli, endpoint_path

ordering_cli = typer.Typer(
    help="An ordered endpoint's keys: the head each waits behind.", no_args_is_help=True
)
stats_cli = typer.Typer(help="Usage statistics (background tasks).", no_args_is_help=True)
endpoint_cli.add_typer(ordering_cli, name="ordering")

KeyOpt = Annotated[
    str | None,
    typer.Option("--key", help="the ordering key (default: messages sent without one)"),
]
SinceOpt = Annotated[str, typer.Option(help="how far back: 2h, 3d, or an ISO time")]
UntilOpt = Annotated[str | None, typer.Option(help="up to (default: now)")]
WaitOpt = Annotated[bool, typer.Option(help="follow the background task to its end")]
TimeoutOpt = Annotated[float, typer.Option(help="seconds to follow it at most")]


def _follow(client: Any, task: dict, *, wait: bool, timeout: float) -> dict:
    """The task once it has ended (or as started, without ``wait``); a failed or
    unfinished task is an error."""
    if not wait:
        return task
    deadline = time.monotonic() + timeout
    while task["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        task = client.get(f"/api/v1/background-task/{quote(task['id'])}")
    if task["status"] == "failed":
        fail(f"task {task['id']} failed")
    if task["status"] == "running":
        fail(f"task {task['id']} still running after {timeout:g}s")
    return task


def _window(since: str, until: str | None) -> dict[str, str]:
    return {"since": when(since), "until": when(until) if until else when("0s")}


# ---- ordering ------------------------------------------------------------------------

HEAD_COLUMNS = (
    Column("key", lambda r: r["orderingKey"] if r["orderingKey"] is not None else "(none)"),
    ident("message", lambda r: r["msgId"]),
    Column("status", lambda r: r["statusText"]),
    Column("attempts", lambda r: r["attempts"]),
    Column("waiting since", lambda r: short_time(r["waitingSince"])),
    Column("next attempt", lambda r: short_time(r["nextAttempt"])),
    Column("note", lambda r: r.get("note") or ""),
)


def _act_on_head(
    client: Any, out: Out, app: str, endpoint: str, key: str | None, action: str, title: str
) -> None:
    row = client.post(f"{endpoint_path(app, endpoint)}/ordering/{action}", {"orderingKey": key})
    out.one(row, HEAD_COLUMNS, title=title)


@ordering_cli.command("list")
@client_command
def ordering_list(app: AppArg, endpoint: EndpointArg, *, client: Client, out: Out) -> None:
    """Each key's head, the longest-waiting first: what the key's later messages wait for."""
    rows = client.get(f"{endpoint_path(app, endpoint)}/ordering")["data"]
    out.rows(rows, HEAD_COLUMNS, title="ordering heads")


@ordering_cli.command("retry")
@client_command
def ordering_retry(
    app: AppArg, endpoint: EndpointArg, key: KeyOpt = None, *, client: Client, out: Out
) -> None:
    """Send a key's head now instead of at its next retry."""
    _act_on_head(client, out, app, endpoint, key, "retry", "head sent again")


@ordering_cli.command("skip")
@client_command
def ordering_skip(
    app: AppArg, endpoint: EndpointArg, key: KeyOpt = None, *, client: Client, out: Out
) -> None:
    """Give up a key's head (recorded as skipped, by whom and when) so its next message
    goes out."""
    _act_on_head(client, out, app, endpoint, key, "skip", "head skipped")


# ---- replay-missing ------------------------------------------------------------------


@endpoint_cli.command("replay-missing")
@client_command
def endpoint_replay_missing(
    app: AppArg,
    endpoint: EndpointArg,
    since: SinceOpt,
    until: UntilOpt = None,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 600,
    *,
    client: Client,
    out: Out,
) -> None:
    """Send the endpoint every message of a time window it never got, as it would route
    them now; messages it already has are not sent again."""
    body = {"since": when(since)} | ({"until": when(until)} if until else {})
    task = client.post(f"{endpoint_path(app, endpoint)}/replay-missing", body)
    task = _follow(client, task, wait=wait, timeout=timeout)
    if out.json:
        print_json(task)
    elif wait:
        sent = task["data"].get("messagesSent", 0)
        console.print(f"replay task {task['id']}: {sent} messages sent to the endpoint")
    else:
        console.print(f"replay task {task['id']} started")


# ---- stats ---------------------------------------------------------------------------


@stats_cli.command("apps")
@client_command
def stats_apps(
    since: SinceOpt,
    until: UntilOpt = None,
    app_ids: Annotated[
        list[str] | None, typer.Option("--app", help="an application id or uid (repeat)")
    ] = None,
    timeout: TimeoutOpt = 600,
    *,
    client: Client,
    out: Out,
) -> None:
    """Message destinations per application in a time window."""
    body: dict[str, Any] = _window(since, until) | ({"appIds": app_ids} if app_ids else {})
    started = client.post("/api/v1/stats/usage/app", body)
    task = _follow(client, started, wait=True, timeout=timeout)
    columns = (
        ident("app", lambda r: r["appId"]),
        Column("uid", lambda r: r.get("appUid") or ""),
        Column("destinations", lambda r: r["messageDestinations"]),
    )
    if out.json:
        print_json(task | {"unresolvedAppIds": started.get("unresolvedAppIds", [])})
        return
    out.rows(task["data"].get("appStats", []), columns, title="message destinations")
    for ref in started.get("unresolvedAppIds", []):
        console.print(f"not an application: {ref}")


@stats_cli.command("event-types")
@client_command
def stats_event_types(timeout: TimeoutOpt = 600, *, client: Client, out: Out) -> None:
    """Per application, the event types its endpoints subscribe to (Svix's event-type
    aggregate)."""
    task = _follow(
        client, client.put("/api/v1/stats/usage/event-types", {}), wait=True, timeout=timeout
    )
    if out.json:
        print_json(task)
        return
    console.print_json(data=task["data"])
