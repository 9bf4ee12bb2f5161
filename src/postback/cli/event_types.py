"""``postback event-type``: the event-type catalog, one at a time or a whole catalog file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from postback.cli.client import Api, ApiError, quote
from postback.cli.common import (
    Client,
    Column,
    LimitOpt,
    Out,
    client_command,
    console,
    fail,
    ident,
)

event_type_cli = typer.Typer(help="The event-type catalog.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="the event type's name, e.g. invoice.paid")]


def read_json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror}")
    except ValueError as exc:
        fail(f"{what} {path} is not JSON: {exc}")


def _state(row: dict) -> str:
    return ", ".join(k for k in ("archived", "deprecated") if row.get(k))


EVENT_TYPE_COLUMNS = (
    ident("name", lambda r: r["name"]),
    Column("group", lambda r: r.get("groupName")),
    Column("schemas", lambda r: sorted(r.get("schemas") or {})),
    Column("description", lambda r: r.get("description")),
    Column("state", _state),
)


@event_type_cli.command("list")
@client_command
def event_type_list(
    limit: LimitOpt = 250,
    archived: Annotated[bool, typer.Option(help="include archived event types")] = False,
    *,
    client: Client,
    out: Out,
) -> None:
    """List the event-type catalog."""
    rows = list(
        client.pages(
            "/api/v1/event-type",
            limit=limit,
            include_archived=str(archived).lower(),
            with_content="true",
        )
    )
    out.rows(rows, EVENT_TYPE_COLUMNS, title="event types")


ProductPathOpt = Annotated[
    str | None,
    typer.Option(help="where its payloads name the product, e.g. data.product.id"),
]
OrderingKeyPathOpt = Annotated[
    str | None,
    typer.Option(
        help="where its payloads name their ordering key, e.g. data.subscription.id "
        "(for messages sent without --ordering-key)"
    ),
]


@event_type_cli.command("create")
@client_command
def event_type_create(
    name: str,
    description: Annotated[str, typer.Option(help="what happened, for your customers")] = "",
    schema: Annotated[
        Path | None, typer.Option(help="a JSON Schema file: the payload's version 1")
    ] = None,
    group: Annotated[str | None, typer.Option(help="group name, for the portal")] = None,
    product_path: ProductPathOpt = None,
    ordering_key_path: OrderingKeyPathOpt = None,
    *,
    client: Client,
    out: Out,
) -> None:
    """Create an event type, optionally with a JSON Schema for its payload."""
    body: dict[str, Any] = {"name": name, "description": description, "groupName": group}
    if product_path:
        body["productPath"] = product_path
    if ordering_key_path:
        body["orderingKeyPath"] = ordering_key_path
    if schema is not None:
        body["schemas"] = {"1": read_json_file(schema, "schema")}
    row = client.post("/api/v1/event-type", body)
    out.one(row, EVENT_TYPE_COLUMNS, title="event type created")


@event_type_cli.command("get")
@client_command
def event_type_get(name: NameArg, *, client: Client, out: Out) -> None:
    """Show one event type (with its schemas, in --json)."""
    row = client.get(f"/api/v1/event-type/{quote(name)}")
    out.one(row, EVENT_TYPE_COLUMNS, title="event type")


@event_type_cli.command("update")
@client_command
def event_type_update(
    name: NameArg,
    description: Annotated[str | None, typer.Option(help="a new description")] = None,
    schema: Annotated[
        Path | None, typer.Option(help="a JSON Schema file: replaces the schemas with version 1")
    ] = None,
    group: Annotated[str | None, typer.Option(help="group name, for the portal")] = None,
    archived: Annotated[
        bool | None, typer.Option("--archived/--unarchived", help="hide it from the catalog")
    ] = None,
    deprecated: Annotated[
        bool | None, typer.Option("--deprecated/--not-deprecated", help="mark it deprecated")
    ] = None,
    validate: Annotated[
        bool | None,
        typer.Option("--validate/--no-validate", help="check payloads against the schema"),
    ] = None,
    product_path: ProductPathOpt = None,
    ordering_key_path: OrderingKeyPathOpt = None,
    *,
    client: Client,
    out: Out,
) -> None:
    """Change an event type (what is not given stays)."""
    body: dict[str, Any] = {
        "description": description,
        "groupName": group,
        "archived": archived,
        "deprecated": deprecated,
        "validatePayloads": validate,
        "productPath": product_path,
        "orderingKeyPath": ordering_key_path,
    }
    if schema is not None:
        body["schemas"] = {"1": read_json_file(schema, "schema")}
    body = {k: v for k, v in body.items() if v is not None}
    if not body:
        fail("nothing to change: see --help for what can be")
    row = client.patch(f"/api/v1/event-type/{quote(name)}", body)
    out.one(row, EVENT_TYPE_COLUMNS, title="event type updated")


@event_type_cli.command("delete")
@client_command
def event_type_delete(
    name: NameArg,
    expunge: Annotated[
        bool, typer.Option(help="delete it for good (default: archive it, as Svix does)")
    ] = False,
    *,
    client: Client,
    out: Out,
) -> None:
    """Archive an event type (or, with --expunge, delete it)."""
    path = f"/api/v1/event-type/{quote(name)}"
    client.request("DELETE", path, params={"expunge": str(expunge).lower()})
    done = "deleted" if expunge else "archived"
    out.said(f"{done} event type {name}", {"name": name, done: True})


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
@client_command
def event_type_import(
    file: Annotated[
        Path,
        typer.Argument(help='catalog: {"name", "description", "productPath", "eventTypes"}'),
    ],
    *,
    client: Client,
    out: Out,
) -> None:
    """Create or update every event type of a catalog file; exit 1 if any failed."""
    catalog = read_json_file(file, "catalog")
    entries = catalog.get("eventTypes") if isinstance(catalog, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries
    ):
        fail(f'{file} is not a catalog: expected {{"eventTypes": [{{"name": ...}}, ...]}}')
    results = []
    # A catalog may say once where every one of its event types names the product.
    product_path = catalog.get("productPath")
    for entry in entries:
        if product_path and "productPath" not in entry:
            entry = entry | {"productPath": product_path}
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
    columns = [ident("name", lambda r: r["name"])]
    columns += [Column(k, lambda r, k=k: r[k]) for k in ("result", "schemas", "examples")]
    columns.append(Column("detail", lambda r: r["detail"]))
    title = f"catalog {catalog.get('name') or file.name}"
    out.rows(results, columns, title=title)
    failed = sum(r["result"] == "failed" for r in results)
    if not out.json:
        counts = {k: sum(r["result"] == k for r in results) for k in ("created", "updated")}
        console.print(f"{counts['created']} created, {counts['updated']} updated, {failed} failed")
    if failed:
        raise typer.Exit(1)
