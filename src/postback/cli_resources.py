"""Client commands for what the operator sets up: applications, event types (one at a time
or a whole catalog file), endpoints."""

from __future__ import annotations

import json
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
    fail,
    print_json,
    progress_bar,
    reported,
    short_time,
    show,
    show_one,
    when,
)

app_cli = typer.Typer(help="Applications: one per customer of yours.", no_args_is_help=True)
event_type_cli = typer.Typer(help="The event-type catalog.", no_args_is_help=True)
endpoint_cli = typer.Typer(
    help="Endpoints: where an application's webhooks go.", no_args_is_help=True
)

EndpointArg = Annotated[str, typer.Argument(help="endpoint id or uid")]

APP_COLUMNS = (
    ("id", lambda r: r["id"]),
    ("uid", lambda r: r.get("uid")),
    ("name", lambda r: r["name"]),
    ("created", lambda r: short_time(r["createdAt"])),
)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror}")
    except ValueError as exc:
        fail(f"{what} {path} is not JSON: {exc}")


# ---- applications --------------------------------------------------------------------


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
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an application."""
    with reported():
        row = api(url, token).post("/api/v1/app", {"name": name, "uid": uid})
    show_one(row, APP_COLUMNS, title="application created", as_json=as_json)


@app_cli.command("get")
def app_get(
    app: AppArg, url: UrlOpt = DEFAULT, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Show one application."""
    with reported():
        row = api(url, token).get(f"/api/v1/app/{quote(app)}")
    show_one(row, APP_COLUMNS, title="application", as_json=as_json)


# ---- event types ---------------------------------------------------------------------

EVENT_TYPE_COLUMNS = (
    ("name", lambda r: r["name"]),
    ("group", lambda r: r.get("groupName")),
    ("schemas", lambda r: sorted(r.get("schemas") or {})),
    ("description", lambda r: r.get("description")),
    ("archived", lambda r: "yes" if r.get("archived") else ""),
)


@event_type_cli.command("list")
def event_type_list(
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    limit: LimitOpt = 250,
    archived: Annotated[bool, typer.Option(help="include archived event types")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the event-type catalog."""
    with reported():
        rows = list(
            api(url, token).pages(
                "/api/v1/event-type",
                limit=limit,
                include_archived=str(archived).lower(),
                with_content="true",
            )
        )
    show(rows, EVENT_TYPE_COLUMNS, title="event types", as_json=as_json)


@event_type_cli.command("create")
def event_type_create(
    name: str,
    description: Annotated[str, typer.Option(help="what happened, for your customers")] = "",
    schema: Annotated[
        Path | None, typer.Option(help="a JSON Schema file: the payload's version 1")
    ] = None,
    group: Annotated[str | None, typer.Option(help="group name, for the portal")] = None,
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an event type, optionally with a JSON Schema for its payload."""
    body: dict[str, Any] = {"name": name, "description": description, "groupName": group}
    if schema is not None:
        body["schemas"] = {"1": _read_json(schema, "schema")}
    with reported():
        row = api(url, token).post("/api/v1/event-type", body)
    show_one(row, EVENT_TYPE_COLUMNS, title="event type created", as_json=as_json)


def _event_type_in(entry: dict) -> dict:
    """A catalog entry as the API takes it; Svix's singular ``featureFlag`` is accepted."""
    body = dict(entry)
    flag = body.pop("featureFlag", None)
    if flag and not body.get("featureFlags"):
        body["featureFlags"] = [flag]
    return body


def _upsert(client: Api, entry: dict) -> str:
    """Create the event type, or replace it when the name is taken; says which."""
    body = _event_type_in(entry)
    try:
        client.post("/api/v1/event-type", body)
        return "created"
    except ApiError as exc:
        if exc.status != 409:
            raise
    name = body.pop("name")
    client.put(f"/api/v1/event-type/{quote(name)}", body)
    return "updated"


def _examples(entry: dict) -> int:
    schemas = entry.get("schemas") or {}
    newest = schemas[max(schemas, key=lambda v: int(v) if v.isdigit() else 0)] if schemas else {}
    return len(newest.get("examples") or []) if isinstance(newest, dict) else 0


@event_type_cli.command("import")
def event_type_import(
    file: Annotated[Path, typer.Argument(help='catalog: {"name", "description", "eventTypes"}')],
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or update every event type of a catalog file; exit 1 if any failed."""
    catalog = _read_json(file, "catalog")
    entries = catalog.get("eventTypes") if isinstance(catalog, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries
    ):
        fail(f'{file} is not a catalog: expected {{"eventTypes": [{{"name": ...}}, ...]}}')
    client = api(url, token)
    results = []
    for entry in entries:
        try:
            outcome, detail = _upsert(client, entry), ""
        except ApiError as exc:
            outcome, detail = "failed", exc.detail
        results.append(
            {
                "name": entry["name"],
                "result": outcome,
                "schemas": sorted(entry.get("schemas") or {}),
                "examples": _examples(entry),
                "detail": detail,
            }
        )
    columns = [(k, lambda r, k=k: r[k]) for k in ("name", "result", "schemas", "examples")]
    columns.append(("detail", lambda r: r["detail"]))
    title = f"catalog {catalog.get('name') or file.name}"
    show(results, columns, title=title, as_json=as_json)
    failed = sum(r["result"] == "failed" for r in results)
    if not as_json:
        counts = {k: sum(r["result"] == k for r in results) for k in ("created", "updated")}
        console.print(f"{counts['created']} created, {counts['updated']} updated, {failed} failed")
    if failed:
        raise typer.Exit(1)


# ---- endpoints -----------------------------------------------------------------------

ENDPOINT_COLUMNS = (
    ("id", lambda r: r["id"]),
    ("url", lambda r: r["url"]),
    ("event types", lambda r: r.get("filterTypes") or r.get("eventTypes") or "all"),
    ("channels", lambda r: r.get("channels") or ""),
    ("disabled", lambda r: "DISABLED" if r.get("disabled") else ""),
    ("description", lambda r: r.get("description")),
)


def _endpoints(app: str) -> str:
    return f"/api/v1/app/{quote(app)}/endpoint"


@endpoint_cli.command("list")
def endpoint_list(
    app: AppArg,
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    limit: LimitOpt = 250,
    as_json: JsonOpt = False,
) -> None:
    """List an application's endpoints."""
    with reported():
        rows = list(api(url, token).pages(_endpoints(app), limit=limit))
    show(rows, ENDPOINT_COLUMNS, title="endpoints", as_json=as_json)


@endpoint_cli.command("create")
def endpoint_create(
    app: AppArg,
    endpoint_url: Annotated[str, typer.Argument(metavar="URL", help="where to POST webhooks")],
    event_type: Annotated[
        list[str] | None, typer.Option("--event-type", "-e", help="only these (repeat)")
    ] = None,
    channel: Annotated[list[str] | None, typer.Option(help="only these channels (repeat)")] = None,
    description: str = "",
    uid: Annotated[str | None, typer.Option(help="your own id for it")] = None,
    secret: Annotated[
        str | None, typer.Option(help="whsec_… or an ed25519 whsk_… (default: generated)")
    ] = None,
    ed25519: Annotated[
        bool, typer.Option(help="sign with a new ed25519 key (v1a); prints its public key")
    ] = False,
    rate: Annotated[int | None, typer.Option(help="at most this many deliveries/s")] = None,
    client_cert: Annotated[
        Path | None,
        typer.Option(help="mTLS: PEM certificate (key inside, or --client-key)"),
    ] = None,
    client_key: Annotated[Path | None, typer.Option(help="mTLS: PEM private key")] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(help="PEM CA certificates trusted for the receiver"),
    ] = None,
    oauth_token_url: Annotated[
        str | None, typer.Option(help="OAuth2 client credentials: the token endpoint (https)")
    ] = None,
    oauth_client_id: Annotated[str | None, typer.Option(help="OAuth2 client id")] = None,
    oauth_client_secret: Annotated[
        str | None, typer.Option(help="OAuth2 client secret", envvar="POSTBACK_OAUTH_CLIENT_SECRET")
    ] = None,
    oauth_scope: Annotated[list[str] | None, typer.Option(help="OAuth2 scope (repeat)")] = None,
    oauth_audience: Annotated[str | None, typer.Option(help="OAuth2 audience parameter")] = None,
    oauth_auth_method: Annotated[
        str, typer.Option(help="how the client secret is sent: basic or body")
    ] = "basic",
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an endpoint to an application; prints its signing secret (an ed25519 endpoint's
    public key)."""
    if ed25519 and secret is None:
        from postback.signing import generate_ed25519_secret  # loads cryptography: only here

        secret = generate_ed25519_secret()
    body = {
        "url": endpoint_url,
        "description": description,
        "uid": uid,
        "secret": secret,
        "throttleRate": rate,
        "filterTypes": event_type or None,
        "channels": channel or None,
        "mtls": _mtls_body(client_cert, client_key, ca_bundle),
    }
    if oauth_token_url or oauth_client_id or oauth_client_secret:
        method = {"basic": "clientSecretBasic", "body": "clientSecretPost"}.get(oauth_auth_method)
        if method is None:
            fail("--oauth-auth-method is basic or body")
        body["oauth"] = {
            "tokenUrl": oauth_token_url,
            "clientId": oauth_client_id,
            "clientSecret": oauth_client_secret,
            "scopes": oauth_scope or None,
            "audience": oauth_audience,
            "authMethod": method,
        }
    client = api(url, token)
    with reported():
        row = client.post(_endpoints(app), {k: v for k, v in body.items() if v is not None})
        key = client.get(f"{_endpoints(app)}/{quote(row['id'])}/secret")["key"]
    if as_json:
        print_json(row | {"secret": key})
        return
    show_one(row, ENDPOINT_COLUMNS, title="endpoint created", as_json=False)
    label = "public key" if key.startswith("whpk_") else "signing secret"
    console.print(f"{label}: {key}", highlight=False)


def _mtls_body(cert: Path | None, key: Path | None, ca: Path | None) -> dict[str, Any] | None:
    """The API's ``mtls`` from PEM files: the key and certificate go as one identity."""
    if cert is None and key is None and ca is None:
        return None
    if key is not None and cert is None:
        fail("--client-key needs --client-cert")
    try:
        identity = ((key.read_text() if key else "") + cert.read_text()) if cert else None
        return {"identity": identity, "caBundle": ca.read_text() if ca else None}
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}")


def _set_disabled(app: str, endpoint: str, url: str, token: str | None, disabled: bool) -> None:
    with reported():
        row = api(url, token).patch(f"{_endpoints(app)}/{quote(endpoint)}", {"disabled": disabled})
    console.print(f"{row['id']} {'disabled' if row.get('disabled') else 'enabled'}")


@endpoint_cli.command("disable")
def endpoint_disable(
    app: AppArg, endpoint: EndpointArg, url: UrlOpt = DEFAULT, token: TokenOpt = None
) -> None:
    """Stop delivering to an endpoint; its pending deliveries wait."""
    _set_disabled(app, endpoint, url, token, True)


@endpoint_cli.command("enable")
def endpoint_enable(
    app: AppArg, endpoint: EndpointArg, url: UrlOpt = DEFAULT, token: TokenOpt = None
) -> None:
    """Deliver to an endpoint again; what waited is sent now."""
    _set_disabled(app, endpoint, url, token, False)


@endpoint_cli.command("recover")
def endpoint_recover(
    app: AppArg,
    endpoint: EndpointArg,
    since: Annotated[str, typer.Option(help="how far back: 2h, 3d, or an ISO time")],
    until: Annotated[str | None, typer.Option(help="up to (default: now)")] = None,
    wait: Annotated[bool, typer.Option(help="follow the background task to its end")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to follow it at most")] = 600,
    url: UrlOpt = DEFAULT,
    token: TokenOpt = None,
) -> None:
    """Send again every failed delivery to an endpoint in a time window."""
    client = api(url, token)
    window = {"since": when(since), "until": when(until) if until else None}
    base = f"{_endpoints(app)}/{quote(endpoint)}"
    with reported():
        total = client.get(f"{base}/stats", **window)["fail"]
        task = client.post(f"{base}/recover", {k: v for k, v in window.items() if v})
    console.print(f"recover task {task['id']}: {total} failed deliveries in the window")
    if not wait:
        return
    deadline = time.monotonic() + timeout
    with reported(), progress_bar("recovering") as progress:
        bar = progress.add_task("recover", total=total or None)
        while True:
            task = client.get(f"/api/v1/background-task/{quote(task['id'])}")
            progress.update(bar, completed=task["data"].get("recovered", 0))
            if task["status"] != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    recovered = task["data"].get("recovered", 0)
    if task["status"] == "failed":
        fail(f"recover task {task['id']} failed after {recovered} deliveries")
    if task["status"] == "running":
        fail(f"recover task {task['id']} still running after {timeout:g}s ({recovered} so far)")
    console.print(f"recovered {recovered} deliveries; they are being sent again")
