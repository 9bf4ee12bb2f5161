"""``postback endpoint``: where an application's webhooks go. Create, read, change, delete,
switch off and on; the secret, headers, test events and recovery are in endpoint_tools."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from postback.cli import credentials
from postback.cli.applications import MetadataOpt, metadata
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
    read_json,
    show_one,
)

endpoint_cli = typer.Typer(
    help="Endpoints: where an application's webhooks go.", no_args_is_help=True
)

EndpointArg = Annotated[str, typer.Argument(help="endpoint id or uid")]

ENDPOINT_COLUMNS = (
    ident("id", lambda r: r["id"]),
    Column("url", lambda r: r["url"]),
    Column("event types", lambda r: r.get("filterTypes") or r.get("eventTypes") or "all"),
    Column("channels", lambda r: r.get("channels") or ""),
    Column("product", lambda r: r.get("product") or ""),
    Column("filter", lambda r: r.get("filter")),
    Column("projection", lambda r: r.get("projection")),
    Column("credentials", lambda r: _credentials(r)),
    Column("disabled", lambda r: "DISABLED" if r.get("disabled") else ""),
    Column("description", lambda r: r.get("description")),
)


def _credentials(row: dict[str, Any]) -> str:
    """The client certificate and OAuth2 token endpoint deliveries use, if any."""
    shown = []
    mtls = (row.get("mtls") or {}).get("config") or {}
    if mtls.get("subject"):
        shown.append(f"mTLS {mtls['subject']}")
    elif mtls.get("caBundle"):
        shown.append("mTLS CA bundle")
    oauth = (row.get("oauth") or {}).get("config") or {}
    if oauth.get("tokenUrl"):
        shown.append(f"OAuth2 {oauth['tokenUrl']}")
    return ", ".join(shown)


# In place of an application: the operator's own endpoints for operational webhooks
# (postback.cli.operational). No command-line argument can hold a NUL.
OPERATIONAL = "\x00operational"


def endpoints_path(app: str) -> str:
    if app == OPERATIONAL:
        return "/api/v1/operational-webhook/endpoint"
    return f"/api/v1/app/{quote(app)}/endpoint"


def endpoint_path(app: str, endpoint: str) -> str:
    return f"{endpoints_path(app)}/{quote(endpoint)}"


# What an endpoint receives and how fast: the same options on create and update.
EventTypeOpt = Annotated[
    list[str] | None, typer.Option("--event-type", "-e", help="only these (repeat)")
]
ChannelOpt = Annotated[list[str] | None, typer.Option(help="only these channels (repeat)")]
ProductOpt = Annotated[
    str | None,
    typer.Option(help="only this product (found at each event type's productPath)"),
]
FilterOpt = Annotated[
    str | None,
    typer.Option(
        "--filter", help='payload rules as JSON, e.g. \'{"data.product.id": {"$in": ["p1"]}}\''
    ),
]
ProjectionOpt = Annotated[
    str | None,
    typer.Option(help='the fields it gets, as JSON, e.g. \'{"include": ["data.id"]}\''),
]
RateOpt = Annotated[int | None, typer.Option(help="at most this many deliveries/s")]
InFlightOpt = Annotated[
    int | None, typer.Option(help="deliveries in flight to it at once, over every worker")
]
UidOpt = Annotated[str | None, typer.Option(help="your own id for it")]
OrderedOpt = Annotated[
    bool | None,
    typer.Option(
        "--ordered/--unordered", help="one delivery at a time per message orderingKey, in order"
    ),
]


# How deliveries prove who sends them (docs/credentials.md): on create and update.
ClientCertOpt = Annotated[
    Path | None, typer.Option(help="mTLS: PEM certificate (key inside, or --client-key)")
]
ClientKeyOpt = Annotated[Path | None, typer.Option(help="mTLS: PEM private key")]
CaBundleOpt = Annotated[
    Path | None, typer.Option(help="PEM CA certificates trusted for the receiver")
]
TokenUrlOpt = Annotated[
    str | None, typer.Option(help="OAuth2 client credentials: the token endpoint (https)")
]
ClientIdOpt = Annotated[str | None, typer.Option(help="OAuth2 client id")]
ClientSecretOpt = Annotated[
    str | None,
    typer.Option(help="OAuth2 client secret", envvar="POSTBACK_OAUTH_CLIENT_SECRET"),
]
ScopeOpt = Annotated[list[str] | None, typer.Option(help="OAuth2 scope (repeat)")]
AudienceOpt = Annotated[str | None, typer.Option(help="OAuth2 audience parameter")]
AuthMethodOpt = Annotated[str, typer.Option(help="how the client secret is sent: basic or body")]


def endpoint_body(
    *,
    description: str | None,
    uid: str | None,
    event_type: list[str] | None,
    channel: list[str] | None,
    payload_filter: str | None,
    projection: str | None,
    rate: int | None,
    max_in_flight: int | None,
    meta: list[str] | None,
    ordered: bool | None = None,
    product: str | None = None,
) -> dict[str, Any]:
    """The options given, as the API's endpoint fields (what was not given is left out)."""
    body = {
        "description": description,
        "uid": uid,
        "filterTypes": event_type or None,
        "channels": channel or None,
        "filter": read_json(payload_filter, "--filter") if payload_filter else None,
        "projection": read_json(projection, "--projection") if projection else None,
        "throttleRate": rate,
        "maxInFlight": max_in_flight,
        "metadata": metadata(meta),
        "ordered": ordered,
        "product": product,
    }
    return {k: v for k, v in body.items() if v is not None}


@endpoint_cli.command("list")
@client_command
def endpoint_list(app: AppArg, limit: LimitOpt = 250, *, client: Client, out: Out) -> None:
    """List an application's endpoints."""
    rows = list(client.pages(endpoints_path(app), limit=limit))
    out.rows(rows, ENDPOINT_COLUMNS, title="endpoints")


@endpoint_cli.command("create")
@client_command
def endpoint_create(
    app: AppArg,
    endpoint_url: Annotated[str, typer.Argument(metavar="URL", help="where to POST webhooks")],
    event_type: EventTypeOpt = None,
    channel: ChannelOpt = None,
    product: ProductOpt = None,
    payload_filter: FilterOpt = None,
    projection: ProjectionOpt = None,
    description: str = "",
    uid: UidOpt = None,
    secret: Annotated[
        str | None, typer.Option(help="whsec_… or an ed25519 whsk_… (default: generated)")
    ] = None,
    ed25519: Annotated[
        bool, typer.Option(help="sign with a new ed25519 key (v1a); prints its public key")
    ] = False,
    rate: RateOpt = None,
    max_in_flight: InFlightOpt = None,
    meta: MetadataOpt = None,
    ordered: OrderedOpt = None,
    client_cert: ClientCertOpt = None,
    client_key: ClientKeyOpt = None,
    ca_bundle: CaBundleOpt = None,
    oauth_token_url: TokenUrlOpt = None,
    oauth_client_id: ClientIdOpt = None,
    oauth_client_secret: ClientSecretOpt = None,
    oauth_scope: ScopeOpt = None,
    oauth_audience: AudienceOpt = None,
    oauth_auth_method: AuthMethodOpt = "basic",
    *,
    client: Client,
    out: Out,
) -> None:
    """Add an endpoint to an application; prints its signing secret.

    An ed25519 endpoint prints its public key instead."""
    if ed25519 and secret is None:
        secret = credentials.ed25519_secret()
    body = {
        "url": endpoint_url,
        "secret": secret,
        "mtls": credentials.mtls_body(client_cert, client_key, ca_bundle),
        "oauth": credentials.oauth_body(
            oauth_token_url,
            oauth_client_id,
            oauth_client_secret,
            oauth_scope,
            oauth_audience,
            oauth_auth_method,
        ),
    } | endpoint_body(
        description=description,
        uid=uid,
        event_type=event_type,
        channel=channel,
        payload_filter=payload_filter,
        projection=projection,
        rate=rate,
        max_in_flight=max_in_flight,
        meta=meta,
        ordered=ordered,
        product=product,
    )
    row = client.post(endpoints_path(app), {k: v for k, v in body.items() if v is not None})
    key = client.get(f"{endpoint_path(app, row['id'])}/secret")["key"]
    if out.json:
        print_json(row | {"secret": key})
        return
    show_one(row, ENDPOINT_COLUMNS, title="endpoint created", as_json=False)
    console.print(f"{credentials.key_label(key)}: {key}", highlight=False, soft_wrap=True)


@endpoint_cli.command("get")
@client_command
def endpoint_get(app: AppArg, endpoint: EndpointArg, *, client: Client, out: Out) -> None:
    """Show one endpoint: what it receives, and whether it is switched off and why."""
    row = client.get(endpoint_path(app, endpoint))
    out.one(row, ENDPOINT_COLUMNS, title="endpoint")
    if not out.json and row.get("disabledReason"):
        console.print(f"disabled: {row['disabledReason']}", highlight=False, soft_wrap=True)


class Clearable(StrEnum):
    event_types = "event-types"
    channels = "channels"
    product = "product"
    filter = "filter"
    projection = "projection"
    rate = "rate"
    max_in_flight = "max-in-flight"
    mtls = "mtls"
    oauth = "oauth"


_CLEARED = {
    Clearable.event_types: "filterTypes",
    Clearable.channels: "channels",
    Clearable.product: "product",
    Clearable.filter: "filter",
    Clearable.projection: "projection",
    Clearable.rate: "throttleRate",
    Clearable.max_in_flight: "maxInFlight",
    Clearable.mtls: "mtls",
    Clearable.oauth: "oauth",
}


@endpoint_cli.command("update")
@client_command
def endpoint_update(
    app: AppArg,
    endpoint: EndpointArg,
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="a new URL")] = None,
    event_type: EventTypeOpt = None,
    channel: ChannelOpt = None,
    product: ProductOpt = None,
    payload_filter: FilterOpt = None,
    projection: ProjectionOpt = None,
    description: Annotated[str | None, typer.Option(help="a new description")] = None,
    uid: UidOpt = None,
    rate: RateOpt = None,
    max_in_flight: InFlightOpt = None,
    meta: MetadataOpt = None,
    ordered: OrderedOpt = None,
    client_cert: ClientCertOpt = None,
    client_key: ClientKeyOpt = None,
    ca_bundle: CaBundleOpt = None,
    oauth_token_url: TokenUrlOpt = None,
    oauth_client_id: ClientIdOpt = None,
    oauth_client_secret: ClientSecretOpt = None,
    oauth_scope: ScopeOpt = None,
    oauth_audience: AudienceOpt = None,
    oauth_auth_method: AuthMethodOpt = "basic",
    clear: Annotated[
        list[Clearable] | None,
        typer.Option(help="remove this restriction, limit or credential (repeat)"),
    ] = None,
    *,
    client: Client,
    out: Out,
) -> None:
    """Change an endpoint (what is not given stays; --clear removes a restriction)."""
    body: dict[str, Any] = {"url": endpoint_url} if endpoint_url else {}
    given = {
        "mtls": credentials.mtls_body(client_cert, client_key, ca_bundle),
        "oauth": credentials.oauth_body(
            oauth_token_url,
            oauth_client_id,
            oauth_client_secret,
            oauth_scope,
            oauth_audience,
            oauth_auth_method,
        ),
    }
    body |= {k: v for k, v in given.items() if v is not None}
    body |= endpoint_body(
        description=description,
        uid=uid,
        event_type=event_type,
        channel=channel,
        payload_filter=payload_filter,
        projection=projection,
        rate=rate,
        max_in_flight=max_in_flight,
        meta=meta,
        ordered=ordered,
        product=product,
    )
    for field in clear or ():
        if _CLEARED[field] in body:
            fail(f"--clear {field.value} and a new value for it: give one")
        body[_CLEARED[field]] = None
    if not body:
        fail("nothing to change: see --help for what can be")
    row = client.patch(endpoint_path(app, endpoint), body)
    out.one(row, ENDPOINT_COLUMNS, title="endpoint updated")


@endpoint_cli.command("delete")
@client_command
def endpoint_delete(app: AppArg, endpoint: EndpointArg, *, client: Client, out: Out) -> None:
    """Delete an endpoint; what was waiting for it is not sent."""
    client.delete(endpoint_path(app, endpoint))
    out.said(f"deleted endpoint {endpoint}", {"id": endpoint, "deleted": True})


def _set_disabled(client: Client, out: Out, app: str, endpoint: str, disabled: bool) -> None:
    row = client.patch(endpoint_path(app, endpoint), {"disabled": disabled})
    out.said(f"{row['id']} {'disabled' if row.get('disabled') else 'enabled'}", row)


@endpoint_cli.command("disable")
@client_command
def endpoint_disable(app: AppArg, endpoint: EndpointArg, *, client: Client, out: Out) -> None:
    """Stop delivering to an endpoint; its pending deliveries wait."""
    _set_disabled(client, out, app, endpoint, True)


@endpoint_cli.command("enable")
@client_command
def endpoint_enable(app: AppArg, endpoint: EndpointArg, *, client: Client, out: Out) -> None:
    """Deliver to an endpoint again; what waited is sent now."""
    _set_disabled(client, out, app, endpoint, False)
