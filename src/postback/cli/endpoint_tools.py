"""More of ``postback endpoint``: its signing secret, its custom headers, a test event, its
delivery counts, and recovering its failed deliveries (a background task, ``postback task``)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from postback.cli.client import quote
from postback.cli.common import (
    AppArg,
    Client,
    Column,
    LimitOpt,
    Out,
    client_command,
    console,
    fail,
    ident,
    print_json,
    progress_bar,
    read_json,
    short_time,
    show,
    when,
)
from postback.cli.endpoints import EndpointArg, endpoint_cli, endpoint_path

secret_cli = typer.Typer(help="An endpoint's signing secret.", no_args_is_help=True)
headers_cli = typer.Typer(help="Headers sent with every delivery to an endpoint.")
task_cli = typer.Typer(help="Background tasks (recover).", no_args_is_help=True)
endpoint_cli.add_typer(secret_cli, name="secret")
endpoint_cli.add_typer(headers_cli, name="headers")


# ---- secret --------------------------------------------------------------------------


def _secret(client: Any, app: str, endpoint: str) -> str:
    return client.get(f"{endpoint_path(app, endpoint)}/secret")["key"]


def _print_secret(out: Out, endpoint: str, key: str) -> None:
    if out.json:
        print_json({"id": endpoint, "key": key})
    else:
        print(key)  # alone on its line, whole: for copying or $(...)


@secret_cli.command("show")
@client_command
def secret_show(app: AppArg, endpoint: EndpointArg, *, client: Client, out: Out) -> None:
    """Print the endpoint's signing secret (whsec_…), what its receiver verifies with."""
    key = _secret(client, app, endpoint)
    _print_secret(out, endpoint, key)


@secret_cli.command("rotate")
@client_command
def secret_rotate(
    app: AppArg,
    endpoint: EndpointArg,
    key: Annotated[str | None, typer.Option(help="the new whsec_… (default: generated)")] = None,
    grace: Annotated[
        int | None,
        typer.Option(min=0, help="seconds the old secret keeps signing too (default 24 h)"),
    ] = None,
    *,
    client: Client,
    out: Out,
) -> None:
    """Replace the signing secret and print the new one.

    The old one keeps signing beside it for the grace period, so receivers can switch
    without missing a delivery."""
    body = {k: v for k, v in {"key": key, "gracePeriodSeconds": grace}.items() if v is not None}
    # The rotation's own answer may be empty (204, as Svix answers): read the new secret
    # back, as the SDK does.
    client.post(f"{endpoint_path(app, endpoint)}/secret/rotate", body)
    new = _secret(client, app, endpoint)
    _print_secret(out, endpoint, new)


# ---- headers -------------------------------------------------------------------------


def _header_pairs(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or ():
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            fail(f"a header is NAME:VALUE, not {pair!r}")
        out[name.strip()] = value.strip()
    return out


HeaderOpt = Annotated[list[str] | None, typer.Option("--header", "-H", help="NAME:VALUE (repeat)")]


@headers_cli.command("show")
@client_command
def headers_show(app: AppArg, endpoint: EndpointArg, *, client: Client, out: Out) -> None:
    """The custom headers; credentials (Authorization, …) are listed by name, never shown."""
    row = client.get(f"{endpoint_path(app, endpoint)}/headers")
    if out.json:
        print_json(row)
        return
    rows = [{"name": k, "value": v} for k, v in sorted(row["headers"].items())]
    rows += [{"name": k, "value": "(hidden)"} for k in row["sensitive"]]
    columns = (Column("name", lambda r: r["name"]), Column("value", lambda r: r["value"]))
    show(rows, columns, title="headers", as_json=False)


@headers_cli.command("set")
@client_command
def headers_set(
    app: AppArg,
    endpoint: EndpointArg,
    header: HeaderOpt = None,
    remove: Annotated[list[str] | None, typer.Option(help="drop this header (repeat)")] = None,
    replace: Annotated[
        bool, typer.Option(help="make these the only headers (default: add to the others)")
    ] = False,
    *,
    client: Client,
    out: Out,
) -> None:
    """Add or change headers (-H NAME:VALUE), drop some (--remove NAME), or --replace all."""
    headers = _header_pairs(header)
    path = f"{endpoint_path(app, endpoint)}/headers"
    if replace:
        if remove:
            fail("--replace sets every header: --remove has nothing to remove")
        client.put(path, {"headers": headers})
    else:
        if not headers and not remove:
            fail("nothing to change: give -H NAME:VALUE or --remove NAME")
        client.patch(path, {"headers": headers, "deleteHeaders": remove or []})
    out.said(
        f"headers of {endpoint} updated",
        {"id": endpoint, "set": sorted(headers), "removed": remove or []},
    )


# ---- test event, stats ---------------------------------------------------------------


@endpoint_cli.command("test")
@client_command
def endpoint_test(
    app: AppArg,
    endpoint: EndpointArg,
    event_type: Annotated[str, typer.Argument(help="whose example payload to send")],
    example: Annotated[int, typer.Option(min=0, help="which of the schema's examples")] = 0,
    payload: Annotated[
        str | None, typer.Option(help="send this JSON object instead of the example")
    ] = None,
    *,
    client: Client,
    out: Out,
) -> None:
    """Send a test event (the event type's example payload) to this endpoint alone.

    It is signed and recorded like any other message: `postback attempts --msg` shows it."""
    body: dict[str, Any] = {"eventType": event_type, "exampleIndex": example}
    if payload is not None:
        body["payload"] = read_json(payload, "--payload")
    row = client.post(f"{endpoint_path(app, endpoint)}/send-example", body)
    out.said(f"sent test {row['id']} ({row['eventType']})", row)


STATS = ("success", "pending", "sending", "fail", "canceled")
ATTEMPT_STATS = ("success", "fail", "canceled")


@endpoint_cli.command("stats")
@client_command
def endpoint_stats(
    app: AppArg,
    endpoint: EndpointArg,
    since: Annotated[str | None, typer.Option(help="from: 2h, 3d, or an ISO time")] = None,
    until: Annotated[str | None, typer.Option(help="up to (default: now)")] = None,
    attempts: Annotated[
        bool, typer.Option(help="count attempts instead, by outcome (the window in whole hours)")
    ] = False,
    *,
    client: Client,
    out: Out,
) -> None:
    """How many deliveries to the endpoint succeeded, wait, are being sent, failed
    (--attempts: how many attempts succeeded, failed, were canceled)."""
    window = {"since": when(since) if since else None, "until": when(until) if until else None}
    if attempts:
        row = client.get(f"{endpoint_path(app, endpoint)}/attempt-stats", **window)
        columns = [Column(k, lambda r, k=k: r.get(k)) for k in ATTEMPT_STATS]
        out.one(row, columns, title=f"attempts to {endpoint}")
        return
    row = client.get(f"{endpoint_path(app, endpoint)}/stats", **window)
    columns = [Column(k, lambda r, k=k: r.get(k)) for k in STATS]
    out.one(row, columns, title=f"deliveries to {endpoint}")


# ---- recover and background tasks ----------------------------------------------------


@endpoint_cli.command("recover")
@client_command
def endpoint_recover(
    app: AppArg,
    endpoint: EndpointArg,
    since: Annotated[str, typer.Option(help="how far back: 2h, 3d, or an ISO time")],
    until: Annotated[str | None, typer.Option(help="up to (default: now)")] = None,
    wait: Annotated[bool, typer.Option(help="follow the background task to its end")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to follow it at most")] = 600,
    *,
    client: Client,
    out: Out,
) -> None:
    """Send again every failed delivery to an endpoint in a time window."""
    window = {"since": when(since), "until": when(until) if until else None}
    base = endpoint_path(app, endpoint)
    total = client.get(f"{base}/stats", **window)["fail"]
    task = client.post(f"{base}/recover", {k: v for k, v in window.items() if v})
    if not out.json:
        console.print(f"recover task {task['id']}: {total} failed deliveries in the window")
    if not wait:
        if out.json:
            print_json(task | {"failed": total})
        return
    deadline = time.monotonic() + timeout
    with progress_bar("recovering") as progress:
        bar = progress.add_task("recover", total=total or None, visible=not out.json)
        while True:
            task = client.get(f"/api/v1/background-task/{quote(task['id'])}")
            progress.update(bar, completed=task["data"].get("recovered", 0))
            if task["status"] != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    recovered = task["data"].get("recovered", 0)
    if out.json:
        print_json(task | {"failed": total})
    if task["status"] == "failed":
        fail(f"recover task {task['id']} failed after {recovered} deliveries")
    if task["status"] == "running":
        fail(f"recover task {task['id']} still running after {timeout:g}s ({recovered} so far)")
    if not out.json:
        console.print(f"recovered {recovered} deliveries; they are being sent again")


TASK_COLUMNS = (
    ident("id", lambda r: r["id"]),
    Column("task", lambda r: r["task"]),
    Column("status", lambda r: r["status"]),
    Column("data", lambda r: r.get("data")),
    Column("updated", lambda r: short_time(r["updatedAt"])),
)


@task_cli.command("list")
@client_command
def task_list(limit: LimitOpt = 50, *, client: Client, out: Out) -> None:
    """List background tasks, newest first."""
    rows = list(client.pages("/api/v1/background-task", limit=limit))
    out.rows(rows, TASK_COLUMNS, title="background tasks")


@task_cli.command("get")
@client_command
def task_get(
    task_id: Annotated[str, typer.Argument(help="the task's id (qtask_…)")],
    *,
    client: Client,
    out: Out,
) -> None:
    """Show one background task and its progress."""
    row = client.get(f"/api/v1/background-task/{quote(task_id)}")
    out.one(row, TASK_COLUMNS, title="background task")
