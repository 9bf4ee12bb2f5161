"""Client commands for delivery attempts: list them (with what the receiver answered), one
in full (or its answer erased), send a message to an endpoint again, the messages an
endpoint got, and ``tail`` (follow attempts as they happen)."""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from postback.cli.client import Api, quote
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
    short_time,
    show_one,
    when,
)
from postback.cli.endpoints import EndpointArg, endpoint_cli
from postback.cli.messages import MESSAGE_COLUMNS, MsgArg

attempt_cli = typer.Typer(help="One delivery attempt in full.", no_args_is_help=True)
RESPONSE_SHOWN = 120  # characters of the receiver's answer in a listing; `attempt get` has all


# An attempt's trigger where the server names none (Svix's two values).
_SVIX_TRIGGERS = {0: "scheduled", 1: "manual"}


def _code(attempt: dict) -> str:
    code = attempt.get("responseStatusCode") or 0
    return str(code) if code else "no answer"


def _response(attempt: dict, limit: int | None = RESPONSE_SHOWN) -> str:
    """The receiver's answer (or why there was none) on one line, cut to ``limit``."""
    text = " ".join((attempt.get("response") or "").split())
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


ATTEMPT_COLUMNS = (
    Column("time", lambda r: short_time(r["timestamp"])),
    ident("attempt", lambda r: r["id"]),
    ident("message", lambda r: r["msgId"]),
    ident("endpoint", lambda r: r["endpointId"]),
    Column("code", _code),
    Column("status", lambda r: r.get("statusText") or r["status"]),
    Column("ms", lambda r: r.get("responseDurationMs")),
    Column("trigger", lambda r: r.get("trigger") or _SVIX_TRIGGERS.get(r.get("triggerType"))),
    Column("response", _response),
)


class Outcome(StrEnum):
    success = "success"
    pending = "pending"
    fail = "fail"
    sending = "sending"
    canceled = "canceled"


# MessageStatus on the wire, in Svix's order.
_STATUS = {outcome: number for number, outcome in enumerate(Outcome)}


@client_command
def attempts(
    app: AppArg,
    msg: Annotated[str | None, typer.Option("--msg", help="a message's attempts")] = None,
    endpoint: Annotated[str | None, typer.Option(help="an endpoint's attempts")] = None,
    status: Annotated[Outcome | None, typer.Option(help="only attempts with this outcome")] = None,
    code: Annotated[
        int | None, typer.Option(help="only this class of answer: 200, 400, 500 (0: none)")
    ] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--event-type", "-e", help="only these (repeat)")
    ] = None,
    since: Annotated[str | None, typer.Option(help="after: 2h, 3d, or an ISO time")] = None,
    until: Annotated[str | None, typer.Option(help="before: 2h, 3d, or an ISO time")] = None,
    limit: LimitOpt = 50,
    *,
    client: Client,
    out: Out,
) -> None:
    """Delivery attempts of a message or an endpoint, newest first, with the answers.

    The receiver's answer is cut short here; `postback attempt get` shows all of it."""
    if msg is None and endpoint is None:
        fail("give --msg, --endpoint, or both")
    if msg is not None:  # of one message, to one endpoint or to all
        path = f"/api/v1/app/{quote(app)}/attempt/msg/{quote(msg)}"
        only = {"endpoint_id": endpoint}
    else:
        path = f"/api/v1/app/{quote(app)}/attempt/endpoint/{quote(endpoint or '')}"
        only = {}
    rows = list(
        client.pages(
            path,
            limit=limit,
            with_content="false",
            status=_STATUS[status] if status is not None else None,
            status_code_class=code,
            event_types=event_type or None,
            after=when(since) if since else None,
            before=when(until) if until else None,
            **only,
        )
    )
    out.rows(rows, ATTEMPT_COLUMNS, title="attempts")


@attempt_cli.command("get")
@client_command
def attempt_get(
    app: AppArg,
    msg: MsgArg,
    attempt: Annotated[str, typer.Argument(help="the attempt's id (atmpt_…)")],
    *,
    client: Client,
    out: Out,
) -> None:
    """One attempt with the receiver's whole answer."""
    row = client.get(f"/api/v1/app/{quote(app)}/msg/{quote(msg)}/attempt/{quote(attempt)}")
    if out.json:
        print_json(row)
        return
    show_one(row, ATTEMPT_COLUMNS[:-1], title="attempt", as_json=False)
    print(f"url: {row['url']}")
    print("response:")
    print(row.get("response") or "(empty)")


@attempt_cli.command("expunge")
@client_command
def attempt_expunge(
    app: AppArg,
    msg: MsgArg,
    attempt: Annotated[str, typer.Argument(help="the attempt's id (atmpt_…)")],
    *,
    client: Client,
    out: Out,
) -> None:
    """Erase what the receiver answered to one attempt (the attempt stays, its response
    reads EXPUNGED)."""
    client.delete(f"/api/v1/app/{quote(app)}/msg/{quote(msg)}/attempt/{quote(attempt)}/content")
    out.said(f"response of {attempt} erased", {"id": attempt, "msgId": msg, "expunged": True})


@client_command
def resend(app: AppArg, msg: MsgArg, endpoint: EndpointArg, *, client: Client, out: Out) -> None:
    """Send a message to an endpoint again, now (a manual attempt)."""
    path = f"/api/v1/app/{quote(app)}/msg/{quote(msg)}/endpoint/{quote(endpoint)}/resend"
    client.post(path, {})
    out.said(
        f"{msg} queued again for {endpoint}", {"msgId": msg, "endpointId": endpoint, "resent": True}
    )


ENDPOINT_MESSAGE_COLUMNS = (
    *MESSAGE_COLUMNS[:3],
    Column("status", lambda r: r.get("statusText") or r["status"]),
    Column("next attempt", lambda r: short_time(r.get("nextAttempt"))),
)


@endpoint_cli.command("messages")
@client_command
def endpoint_messages(
    app: AppArg,
    endpoint: EndpointArg,
    status: Annotated[Outcome | None, typer.Option(help="only those with this outcome")] = None,
    limit: LimitOpt = 50,
    *,
    client: Client,
    out: Out,
) -> None:
    """The messages sent to an endpoint, newest first, each with how its delivery stands."""
    path = f"/api/v1/app/{quote(app)}/endpoint/{quote(endpoint)}/msg"
    rows = list(
        client.pages(
            path,
            limit=limit,
            with_content=str(out.json).lower(),
            status=_STATUS[status] if status is not None else None,
        )
    )
    out.rows(rows, ENDPOINT_MESSAGE_COLUMNS, title="messages to the endpoint")


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


@client_command
def tail(
    app: AppArg,
    endpoint: Annotated[
        list[str] | None, typer.Option(help="only these endpoints (repeat; default: all)")
    ] = None,
    interval: Annotated[float, typer.Option(min=0.05, help="seconds between polls")] = 1.0,
    count: Annotated[int | None, typer.Option(help="stop after this many attempts")] = None,
    seconds: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    *,
    client: Client,
    out: Out,
) -> None:
    """Follow new delivery attempts live, coloured by outcome (Ctrl-C stops).

    Green: a 2xx answer; red: another status; magenta: no answer at all."""
    stop_at = time.monotonic() + seconds if seconds is not None else None
    shown = 0
    # Attempt ids sort by time: what is at or below the newest id seen is old news. The
    # first poll only notes where each endpoint stands; endpoints added later start empty.
    newest: dict[str, str] = {}
    first = True
    try:
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
                _print_attempt(attempt, urls, out.json)
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
