"""Client commands for traffic: send messages (one, or a JSON-lines file in bulk), list
attempts, and tail attempts as they happen."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from postback.apiclient import Api, ApiError, quote
from postback.cli_common import (
    DEFAULT,
    AppArg,
    JsonOpt,
    LimitOpt,
    TokenOpt,
    UrlOpt,
    api,
    console,
    errors,
    fail,
    print_json,
    progress_bar,
    reported,
    short_time,
    show,
)


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
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a message to an application's endpoints (or many, with --bulk)."""
    client = api(url, token)
    extra = {"eventId": event_id, "channels": channel, "tags": tag}
    extra = {k: v for k, v in extra.items() if v}
    if bulk is not None:
        if event_id:
            fail("--event-id names one message; with --bulk put an eventId on each line")
        _send_bulk(client, app, event_type, bulk, extra)
        return
    if event_type is None:
        fail("give the event type (or --bulk FILE)")
    body = {"eventType": event_type, "payload": _read_payload(payload, file)} | extra
    with reported():
        row = client.post(f"/api/v1/app/{quote(app)}/msg", body)
    if as_json:
        print_json(row)
    else:
        console.print(f"sent {row['id']} ({row['eventType']})", highlight=False)


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


def _send_bulk(client: Api, app: str, event_type: str | None, path: Path, extra: dict) -> None:
    try:
        lines = [
            (n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()
        ]
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    problems: list[str] = []
    sent = 0
    with progress_bar("sending") as progress:
        bar = progress.add_task("send", total=len(lines))
        for number, line in lines:
            try:
                message = _bulk_message(line, event_type, extra)
                client.post(f"/api/v1/app/{quote(app)}/msg", message)
                sent += 1
            except (ValueError, ApiError) as exc:
                problems.append(f"line {number}: {getattr(exc, 'detail', exc)}")
                if isinstance(exc, ApiError) and exc.status in (0, 401, 403):
                    break  # every other line would fail the same way
            progress.advance(bar)
    console.print(f"sent {sent} of {len(lines)} messages")
    for problem in problems[:20]:
        errors.print(f"[red]{problem}[/]", highlight=False)
    if problems:
        raise typer.Exit(1)


# ---- attempts ------------------------------------------------------------------------


def _code(attempt: dict) -> str:
    code = attempt.get("responseStatusCode") or 0
    return str(code) if code else "no answer"


ATTEMPT_COLUMNS = (
    ("time", lambda r: short_time(r["timestamp"])),
    ("attempt", lambda r: r["id"]),
    ("message", lambda r: r["msgId"]),
    ("endpoint", lambda r: r["endpointId"]),
    ("code", _code),
    ("status", lambda r: r.get("statusText") or r["status"]),
    ("ms", lambda r: r.get("responseDurationMs")),
    ("trigger", lambda r: "manual" if r.get("triggerType") == 1 else "scheduled"),
)


def attempts(
    app: AppArg,
    msg: Annotated[str | None, typer.Option("--msg", help="a message's attempts")] = None,
    endpoint: Annotated[str | None, typer.Option(help="an endpoint's attempts")] = None,
    limit: LimitOpt = 50,
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delivery attempts of a message or of an endpoint, newest first."""
    if (msg is None) == (endpoint is None):
        fail("give exactly one of --msg or --endpoint")
    path = (
        f"/api/v1/app/{quote(app)}/attempt/msg/{quote(msg)}"
        if msg is not None
        else f"/api/v1/app/{quote(app)}/attempt/endpoint/{quote(endpoint or '')}"
    )
    with reported():
        rows = list(api(url, token).pages(path, limit=limit, with_content="false"))
    show(rows, ATTEMPT_COLUMNS, title="attempts", as_json=as_json)


def _print_attempt(attempt: dict, urls: dict[str, str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(attempt), flush=True)
        return
    code = attempt.get("responseStatusCode") or 0
    style = "green" if 200 <= code <= 299 else "magenta" if code == 0 else "red"
    console.print(
        f"{short_time(attempt['timestamp'])} [{style}]{_code(attempt):>9}[/] "
        f"{attempt.get('responseDurationMs', 0):>6} ms  {attempt['msgId']}  "
        f"{attempt['endpointId']} {urls.get(attempt['endpointId'], '')}",
        highlight=False,
    )
    sys.stdout.flush()


def _newest_attempts(client: Api, app: str, endpoint: str) -> list[dict]:
    path = f"/api/v1/app/{quote(app)}/attempt/endpoint/{quote(endpoint)}"
    return client.get(path, limit=250, with_content="false")["data"]


def tail(
    app: AppArg,
    endpoint: Annotated[
        list[str] | None, typer.Option(help="only these endpoints (repeat; default: all)")
    ] = None,
    interval: Annotated[float, typer.Option(min=0.05, help="seconds between polls")] = 1.0,
    count: Annotated[int | None, typer.Option(help="stop after this many attempts")] = None,
    seconds: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow new delivery attempts live, coloured by outcome (Ctrl-C stops).

    Green: a 2xx answer; red: another status; magenta: no answer at all."""
    client = api(url, token)
    stop_at = time.monotonic() + seconds if seconds is not None else None
    shown = 0
    # Attempt ids sort by time: what is at or below the newest id seen is old news. The
    # first poll only notes where each endpoint stands; endpoints added later start empty.
    newest: dict[str, str] = {}
    first = True
    try:
        with reported():
            while True:
                urls = _watched(client, app, endpoint)
                fresh: list[dict] = []
                for ep_id in urls:
                    last = newest.get(ep_id, "")
                    rows = [r for r in _newest_attempts(client, app, ep_id) if r["id"] > last]
                    if rows:
                        newest[ep_id] = max(r["id"] for r in rows)
                    if not first:
                        fresh.extend(rows)
                if first:
                    errors.print(f"following {len(urls)} endpoint(s); Ctrl-C stops")
                first = False
                for attempt in sorted(fresh, key=lambda r: r["id"]):
                    _print_attempt(attempt, urls, as_json)
                    shown += 1
                    if count is not None and shown >= count:
                        return
                if stop_at is not None and time.monotonic() >= stop_at:
                    return
                time.sleep(interval)
    except KeyboardInterrupt:
        return


def _watched(client: Api, app: str, only: list[str] | None) -> dict[str, str]:
    """Endpoint id → URL of the endpoints to follow (looked up each poll: new endpoints
    join in)."""
    rows: list[dict[str, Any]] = list(
        client.pages(f"/api/v1/app/{quote(app)}/endpoint", limit=1000)
    )
    wanted = set(only or [])
    return {
        r["id"]: r["url"] for r in rows if not wanted or r["id"] in wanted or r.get("uid") in wanted
    }
