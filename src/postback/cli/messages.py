"""Client commands for messages: send (one, or a JSON-lines file in bulk), ``postback
message`` list/get/expunge and where one went, and ``postback events`` (the pull feed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.json import JSON

from postback.api.optins import RETURN_EXISTING
from postback.cli.client import Api, ApiError, quote
from postback.cli.common import (
    AppArg,
    Client,
    Column,
    LimitOpt,
    Out,
    client_command,
    console,
    errors,
    fail,
    ident,
    print_json,
    progress_bar,
    short_time,
    show,
    show_one,
    when,
)

# A message whose eventId was sent before counts as sent (its first id), not as a 409: sending
# a file again after fixing a line sends only what is new (api/optins.py).
SAME_EVENT = {RETURN_EXISTING: "true"}


def _payload(text: str, where: str) -> dict:
    try:
        payload = json.loads(text)
    except ValueError as exc:
        fail(f"the payload from {where} is not JSON: {exc}")
    if not isinstance(payload, dict):
        fail(f"the payload from {where} must be a JSON object")
    return payload


def _read_payload(payload: str | None, file: Path | None) -> dict:
    """From the argument, ``--file``, or stdin (``-`` or nothing given on a pipe)."""
    if payload is not None and file is not None:
        fail("give the payload as an argument or with --file, not both")
    if file is not None:
        try:
            return _payload(file.read_text(), str(file))
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror}")
    if payload is None or payload == "-":
        if payload is None and sys.stdin.isatty():
            fail("no payload: give JSON as an argument, with --file, or on stdin")
        return _payload(sys.stdin.read(), "stdin")
    return _payload(payload, "the argument")


@client_command
def send(
    app: AppArg,
    event_type: Annotated[
        str | None, typer.Argument(help="e.g. invoice.paid (bulk lines may carry their own)")
    ] = None,
    payload: Annotated[
        str | None, typer.Argument(help="JSON object; '-' or nothing on a pipe: stdin")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="payload from a file")] = None,
    bulk: Annotated[
        Path | None,
        typer.Option(help="JSON-lines file: one MessageIn (or one payload) per line"),
    ] = None,
    event_id: Annotated[str | None, typer.Option(help="dedupe key within the app")] = None,
    channel: Annotated[list[str] | None, typer.Option(help="channel (repeat)")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="tag (repeat)")] = None,
    deliver_at: Annotated[
        str | None, typer.Option(help="send it later: an ISO time (with its timezone)")
    ] = None,
    ordering_key: Annotated[
        str | None, typer.Option(help="ordered endpoints get it after this key's earlier ones")
    ] = None,
    *,
    client: Client,
    out: Out,
) -> None:
    """Send a message to an application's endpoints (or many, with --bulk)."""
    extra = {"eventId": event_id, "channels": channel, "tags": tag, "deliverAt": deliver_at}
    extra["orderingKey"] = ordering_key
    extra = {k: v for k, v in extra.items() if v}
    if bulk is not None:
        if event_id:
            fail("--event-id names one message; with --bulk put an eventId on each line")
        _send_bulk(client, app, event_type, bulk, extra, out.json)
        return
    if event_type is None:
        fail("give the event type (or --bulk FILE)")
    body = {"eventType": event_type, "payload": _read_payload(payload, file)} | extra
    row = client.request("POST", f"/api/v1/app/{quote(app)}/msg", body, headers=SAME_EVENT)
    out.said(f"sent {row['id']} ({row['eventType']})", row)


def _bulk_message(line: str, event_type: str | None, extra: dict) -> dict:
    item = json.loads(line)
    if not isinstance(item, dict):
        raise ValueError("a line must be a JSON object")
    message = item if "payload" in item else {"payload": item}
    if "eventType" not in message:
        if event_type is None:
            raise ValueError("no eventType on the line and none given on the command line")
        message = {"eventType": event_type} | message
    return extra | message


def _send_bulk(
    client: Api, app: str, event_type: str | None, path: Path, extra: dict, as_json: bool
) -> None:
    try:
        lines = [
            (n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()
        ]
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    problems: list[str] = []
    sent = 0
    with progress_bar("sending") as progress:
        bar = progress.add_task("send", total=len(lines), visible=not as_json)
        for number, line in lines:
            try:
                message = _bulk_message(line, event_type, extra)
                client.request("POST", f"/api/v1/app/{quote(app)}/msg", message, headers=SAME_EVENT)
                sent += 1
            except (ValueError, ApiError) as exc:
                problems.append(f"line {number}: {getattr(exc, 'detail', exc)}")
                if isinstance(exc, ApiError) and exc.status in (0, 401, 403):
                    break  # every other line would fail the same way
            progress.advance(bar)
    if as_json:
        print_json({"sent": sent, "lines": len(lines), "problems": problems})
    else:
        console.print(f"sent {sent} of {len(lines)} messages")
        for problem in problems[:20]:
            errors.print(f"[red]{problem}[/]", highlight=False)
    if problems:
        raise typer.Exit(1)


# ---- the message log -----------------------------------------------------------------

message_cli = typer.Typer(help="The message log: what was sent, and where it went.")
MsgArg = Annotated[str, typer.Argument(help="message id, or the eventId it was sent with")]

MESSAGE_COLUMNS = (
    Column("time", lambda r: short_time(r["timestamp"])),
    ident("id", lambda r: r["id"]),
    Column("event type", lambda r: r["eventType"]),
    ident("event id", lambda r: r.get("eventId")),
    Column("channels", lambda r: r.get("channels")),
    Column("tags", lambda r: r.get("tags")),
)


def _messages(app: str) -> str:
    return f"/api/v1/app/{quote(app)}/msg"


@message_cli.command("list")
@client_command
def message_list(
    app: AppArg,
    event_type: Annotated[
        list[str] | None, typer.Option("--event-type", "-e", help="only these (repeat)")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="only this channel")] = None,
    tag: Annotated[str | None, typer.Option(help="only this tag")] = None,
    since: Annotated[str | None, typer.Option(help="after: 2h, 3d, or an ISO time")] = None,
    until: Annotated[str | None, typer.Option(help="before: 2h, 3d, or an ISO time")] = None,
    limit: LimitOpt = 50,
    *,
    client: Client,
    out: Out,
) -> None:
    """An application's messages, newest first (payloads in --json)."""
    params = {
        "event_types": event_type or None,
        "channel": channel,
        "tag": tag,
        "after": when(since) if since else None,
        "before": when(until) if until else None,
        "with_content": str(out.json).lower(),
    }
    rows = list(client.pages(_messages(app), limit=limit, **params))
    out.rows(rows, MESSAGE_COLUMNS, title="messages")


@message_cli.command("get")
@client_command
def message_get(app: AppArg, msg: MsgArg, *, client: Client, out: Out) -> None:
    """One message with its payload; by id or by the eventId it was sent with."""
    row = client.get(f"{_messages(app)}/{quote(msg)}")
    if out.json:
        print_json(row)
        return
    show_one(row, MESSAGE_COLUMNS, title="message", as_json=False)
    console.print(JSON.from_data(row["payload"]))


@message_cli.command("expunge")
@client_command
def message_expunge(app: AppArg, msg: MsgArg, *, client: Client, out: Out) -> None:
    """Erase a message's content now: its payload, its copies for endpoints and the
    endpoints' answers to its attempts (the message stays, as a tombstone)."""
    client.delete(f"{_messages(app)}/{quote(msg)}/content")
    out.said(f"content of {msg} erased", {"id": msg, "expunged": True})


DESTINATION_COLUMNS = (
    ident("endpoint", lambda r: r["id"]),
    Column("url", lambda r: r["url"]),
    Column("status", lambda r: r.get("statusText") or r["status"]),
    Column("next attempt", lambda r: short_time(r.get("nextAttempt"))),
    Column("note", lambda r: r.get("note")),
)


@message_cli.command("endpoints")
@client_command
def message_endpoints(
    app: AppArg, msg: MsgArg, limit: LimitOpt = 250, *, client: Client, out: Out
) -> None:
    """Where a message went, and where it did not and why."""
    rows = list(client.pages(f"{_messages(app)}/{quote(msg)}/endpoint", limit=limit))
    out.rows(rows, DESTINATION_COLUMNS, title="endpoints of the message")


@client_command
def events(
    app: AppArg,
    after: Annotated[str | None, typer.Option(help="the cursor a previous call printed")] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--event-type", "-e", help="only these (repeat)")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="only this channel")] = None,
    limit: Annotated[int, typer.Option(min=1, max=250, help="at most this many")] = 50,
    follow: Annotated[
        bool, typer.Option(help="keep following the feed as messages arrive (Ctrl-C stops)")
    ] = False,
    count: Annotated[
        int | None, typer.Option(min=1, help="with --follow: stop after this many")
    ] = None,
    *,
    client: Client,
    out: Out,
) -> None:
    """Pull an application's messages from a cursor, oldest first (the feed to poll).

    Prints the next cursor: pass it as --after to carry on where this call stopped.
    --follow stays on the feed (its Server-Sent Events stream), one message a line."""
    params = {"after": after, "event_types": event_type or None, "channel": channel}
    if follow:
        _follow(client, app, params, count, as_json=out.json)
        return
    page = client.get(f"/api/v1/app/{quote(app)}/events", limit=limit, **params)
    if out.json:
        print_json(page)
        return
    show(page["data"], MESSAGE_COLUMNS, title="events", as_json=False)
    if page.get("iterator"):
        print(f"next: --after {page['iterator']}")


def _follow(client: Client, app: str, params: dict, count: int | None, *, as_json: bool) -> None:
    """The feed's stream, a message a line (a JSON object with its ``cursor`` in --json);
    on stopping, the cursor to carry on from goes to stderr."""
    cursor, shown = params.get("after"), 0
    errors.print("following the events feed; Ctrl-C stops")
    try:
        for event_id, data in client.events(f"/api/v1/app/{quote(app)}/events/stream", **params):
            message = json.loads(data)
            cursor = event_id or cursor
            if as_json:
                print(json.dumps(message | {"cursor": event_id}), flush=True)
            else:
                print(
                    f"{short_time(message['timestamp'])}  {message['id']}  "
                    f"{message['eventType']}  {message.get('eventId') or ''}".rstrip(),
                    flush=True,
                )
            shown += 1
            if count is not None and shown >= count:
                break
    except KeyboardInterrupt:
        pass
    if cursor:
        errors.print(f"next: --after {cursor}", highlight=False, soft_wrap=True)
