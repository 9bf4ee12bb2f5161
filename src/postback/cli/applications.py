"""``postback app``: applications (one per customer of yours), and their app-portal access."""

from __future__ import annotations

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
    fail,
    ident,
    print_json,
    short_time,
)

app_cli = typer.Typer(help="Applications: one per customer of yours.", no_args_is_help=True)

APP_COLUMNS = (
    ident("id", lambda r: r["id"]),
    ident("uid", lambda r: r.get("uid")),
    Column("name", lambda r: r["name"]),
    Column("rate/s", lambda r: r.get("throttleRate")),
    Column("metadata", lambda r: r.get("metadata") or None),
    Column("created", lambda r: short_time(r["createdAt"])),
)

MetadataOpt = Annotated[
    list[str] | None, typer.Option("--metadata", "-m", help="KEY=VALUE (repeat)")
]
RateOpt = Annotated[int | None, typer.Option("--rate", help="at most this many messages/s")]


def metadata(pairs: list[str] | None) -> dict[str, str] | None:
    """``KEY=VALUE`` options as the API's metadata object (None when none were given)."""
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"metadata must be KEY=VALUE, not {pair!r}")
        out[key] = value
    return out


def _app(app: str) -> str:
    return f"/api/v1/app/{quote(app)}"


@app_cli.command("list")
@client_command
def app_list(limit: LimitOpt = 100, *, client: Client, out: Out) -> None:
    """List applications, newest first."""
    rows = list(client.pages("/api/v1/app", limit=limit, order="descending"))
    out.rows(rows, APP_COLUMNS, title="applications")


@app_cli.command("create")
@client_command
def app_create(
    name: str,
    uid: Annotated[str | None, typer.Option(help="your own id for it")] = None,
    rate: RateOpt = None,
    meta: MetadataOpt = None,
    *,
    client: Client,
    out: Out,
) -> None:
    """Create an application."""
    body = {"name": name, "uid": uid, "throttleRate": rate, "metadata": metadata(meta)}
    row = client.post("/api/v1/app", {k: v for k, v in body.items() if v is not None})
    out.one(row, APP_COLUMNS, title="application created")


@app_cli.command("get")
@client_command
def app_get(app: AppArg, *, client: Client, out: Out) -> None:
    """Show one application."""
    row = client.get(_app(app))
    out.one(row, APP_COLUMNS, title="application")


@app_cli.command("update")
@client_command
def app_update(
    app: AppArg,
    name: Annotated[str | None, typer.Option(help="a new name")] = None,
    uid: Annotated[str | None, typer.Option(help="a new uid")] = None,
    rate: RateOpt = None,
    meta: MetadataOpt = None,
    *,
    client: Client,
    out: Out,
) -> None:
    """Change an application's name, uid, rate limit or metadata (what is not given stays)."""
    body = {"name": name, "uid": uid, "throttleRate": rate, "metadata": metadata(meta)}
    body = {k: v for k, v in body.items() if v is not None}
    if not body:
        fail("nothing to change: give --name, --uid, --rate or --metadata")
    row = client.patch(_app(app), body)
    out.one(row, APP_COLUMNS, title="application updated")


@app_cli.command("delete")
@client_command
def app_delete(app: AppArg, *, client: Client, out: Out) -> None:
    """Delete an application with its endpoints, messages and attempts."""
    client.delete(_app(app))
    out.said(f"deleted application {app}", {"id": app, "deleted": True})


@app_cli.command("portal")
@client_command
def app_portal(
    app: AppArg,
    expiry: Annotated[
        int | None, typer.Option(help="seconds the link works (default POSTBACK_APP_TOKEN_TTL)")
    ] = None,
    read_only: Annotated[bool, typer.Option(help="a token that can look but not change")] = False,
    *,
    client: Client,
    out: Out,
) -> None:
    """A link to the app portal for this one application, to hand to your customer."""
    body: dict[str, Any] = {"expiry": expiry, "readOnly": read_only or None}
    row = client.post(
        f"/api/v1/auth/app-portal-access/{quote(app)}",
        {k: v for k, v in body.items() if v is not None},
    )
    if out.json:
        print_json(row)
    else:
        # Plain print: the link is one long word that must stay whole to be copied.
        print(row["url"])


@app_cli.command("expire-tokens")
@client_command
def app_expire_tokens(
    app: AppArg,
    after: Annotated[int, typer.Option(min=0, help="seconds of grace before they stop")] = 0,
    *,
    client: Client,
    out: Out,
) -> None:
    """End every app-portal token (and link) of the application."""
    client.post(f"/api/v1/auth/app/{quote(app)}/expire-all", {"expiry": after})
    out.said(f"portal tokens of {app} end in {after}s", {"id": app, "expiresIn": after})
