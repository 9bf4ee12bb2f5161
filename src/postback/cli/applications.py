"""``postback app``: applications (one per customer of yours), and their app-portal access."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from postback.cli.client import quote
from postback.cli.common import (
    DEFAULT,
    AppArg,
    Column,
    JsonOpt,
    LimitOpt,
    TokenOpt,
    UrlOpt,
    api,
    fail,
    ident,
    print_json,
    reported,
    said,
    short_time,
    show,
    show_one,
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
def app_list(
    url: UrlOpt = DEFAULT, token: TokenOpt = None, limit: LimitOpt = 100, as_json: JsonOpt = False
) -> None:
    """List applications, newest first."""
    with reported():
        rows = list(api(url, token).pages("/api/v1/app", limit=limit, order="descending"))
    show(rows, APP_COLUMNS, title="applications", as_json=as_json)


@app_cli.command("create")
def app_create(
    name: str,
    uid: Annotated[str | None, typer.Option(help="your own id for it")] = None,
    rate: RateOpt = None,
    meta: MetadataOpt = None,
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an application."""
    body = {"name": name, "uid": uid, "throttleRate": rate, "metadata": metadata(meta)}
    with reported():
        row = api(url, token).post("/api/v1/app", {k: v for k, v in body.items() if v is not None})
    show_one(row, APP_COLUMNS, title="application created", as_json=as_json)


@app_cli.command("get")
def app_get(
    app: AppArg, url: UrlOpt = DEFAULT, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Show one application."""
    with reported():
        row = api(url, token).get(_app(app))
    show_one(row, APP_COLUMNS, title="application", as_json=as_json)


@app_cli.command("update")
def app_update(
    app: AppArg,
    name: Annotated[str | None, typer.Option(help="a new name")] = None,
    uid: Annotated[str | None, typer.Option(help="a new uid")] = None,
    rate: RateOpt = None,
    meta: MetadataOpt = None,
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an application's name, uid, rate limit or metadata (what is not given stays)."""
    body = {"name": name, "uid": uid, "throttleRate": rate, "metadata": metadata(meta)}
    body = {k: v for k, v in body.items() if v is not None}
    if not body:
        fail("nothing to change: give --name, --uid, --rate or --metadata")
    with reported():
        row = api(url, token).patch(_app(app), body)
    show_one(row, APP_COLUMNS, title="application updated", as_json=as_json)


@app_cli.command("delete")
def app_delete(
    app: AppArg, url: UrlOpt = DEFAULT, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Delete an application with its endpoints, messages and attempts."""
    with reported():
        api(url, token).delete(_app(app))
    said(f"deleted application {app}", {"id": app, "deleted": True}, as_json=as_json)


@app_cli.command("portal")
def app_portal(
    app: AppArg,
    expiry: Annotated[
        int | None, typer.Option(help="seconds the link works (default POSTBACK_APP_TOKEN_TTL)")
    ] = None,
    read_only: Annotated[bool, typer.Option(help="a token that can look but not change")] = False,
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A link to the app portal for this one application, to hand to your customer."""
    body: dict[str, Any] = {"expiry": expiry, "readOnly": read_only or None}
    with reported():
        row = api(url, token).post(
            f"/api/v1/auth/app-portal-access/{quote(app)}",
            {k: v for k, v in body.items() if v is not None},
        )
    if as_json:
        print_json(row)
    else:
        # Plain print: the link is one long word that must stay whole to be copied.
        print(row["url"])


@app_cli.command("expire-tokens")
def app_expire_tokens(
    app: AppArg,
    after: Annotated[int, typer.Option(min=0, help="seconds of grace before they stop")] = 0,
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """End every app-portal token (and link) of the application."""
    with reported():
        api(url, token).post(f"/api/v1/auth/app/{quote(app)}/expire-all", {"expiry": after})
    said(
        f"portal tokens of {app} end in {after}s",
        {"id": app, "expiresIn": after},
        as_json=as_json,
    )
