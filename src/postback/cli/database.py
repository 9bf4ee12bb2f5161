"""The database commands: ``migrate``, ``check`` (the queue's and the events feed's health,
read from the database) and ``token`` (operator tokens, made before any API token is at
hand). They open the database themselves rather than calling the API."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from postback.cli.common import Column, JsonOpt, ident, print_json, said, show
from postback.cli.server import DatabaseOpt, console, load_settings
from postback.config import Settings

if TYPE_CHECKING:
    from postback.store.store import Store


def _with_store(settings: Settings, work: Any, *, migrate: bool = True) -> Any:
    """Open the database, bring its schema up to date (unless told not to), run ``work``."""
    from postback.store.migrate import migrate as run_migrations
    from postback.store.store import Store

    async def run() -> Any:
        store = Store.connect(settings.database_url)
        try:
            if migrate:
                await run_migrations(store.engine)
            return await work(store) if work else None
        finally:
            await store.close()

    return asyncio.run(run())


def migrate(database_url: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Create or upgrade the database schema."""
    _with_store(load_settings(database_url=database_url), None)
    said("database is up to date", {"migrated": True}, as_json=as_json)


def check(
    database_url: DatabaseOpt = None,
    overdue_after: Annotated[
        float, typer.Option(help="seconds past due (or past its lease) that count as stuck")
    ] = 60.0,
    feed_held_after: Annotated[
        float,
        typer.Option(help="seconds a transaction writing messages may hold the events feed back"),
    ] = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Report the delivery queue's and the events feed's health from the database.

    Exits 1 if anything is stuck or held back."""
    settings = load_settings(database_url=database_url)

    async def read(store: Store) -> tuple[dict[str, Any], dict[str, Any]]:
        return await store.queue_health(overdue_after), await store.feed_health(feed_held_after)

    health, feed = _with_store(settings, read, migrate=False)
    healthy = health["healthy"] and not feed["held_back"]
    if as_json:
        print_json(health | {"feed": feed, "healthy": healthy})
    else:
        table = Table(title="delivery queue")
        table.add_column("measure")
        table.add_column("value", justify="right")
        labels = {
            "due": "due now",
            "overdue": f"pending, due more than {overdue_after:g}s ago",
            "scheduled": "waiting for a retry",
            "paused": "parked (endpoint disabled)",
            "held": "due, held back by an open circuit or a Retry-After",
            "sending": "being sent (leased)",
            "stuck": f"lease expired more than {overdue_after:g}s ago",
            "oldest_due_seconds": "oldest due delivery, seconds late",
            "open_circuits": "endpoints whose circuit is open",
            "workers": "workers beating",
        }
        for key, label in labels.items():
            value = health[key]
            table.add_row(label, f"{value:.1f}" if isinstance(value, float) else str(value))
        console.print(table)
        verdict = "[green]healthy[/]" if health["healthy"] else "[red]NOT healthy[/]"
        console.print(f"queue is {verdict}")
        if feed["held_back"]:
            console.print(f"events feed is [red]HELD BACK[/] for {feed['held_seconds']:.1f}s by:")
            for writer in feed["writers"]:
                console.print("  " + _session(writer, "writing messages"))
                for other in writer["blocked_by"]:
                    console.print("    waiting for " + _session(other, "holding its lock"))
        else:
            console.print("events feed is [green]live[/]")
    if not healthy:
        raise typer.Exit(1)


def _session(s: dict[str, Any], doing: str) -> str:
    """One PostgreSQL session as check shows it: pid, database, state, age."""
    if "seconds" not in s:
        return f"pid {s['pid']} (gone)"
    wait = f", waiting on {s['wait_event_type']}:{s['wait_event']}" if s.get("wait_event") else ""
    age = f", open {s['seconds']:.1f}s" if s["seconds"] is not None else ""
    return f"pid {s['pid']} in database {s['database']}, {doing}, {s['state']}{wait}{age}"


token_app = typer.Typer(help="Operator tokens: create (shown once), list, revoke.")


TOKEN_COLUMNS = (
    ident("id", lambda r: r["id"]),
    Column("name", lambda r: r["name"]),
    Column("created", lambda r: f"{r['created_at']:%Y-%m-%d %H:%M}"),
    Column("revoked", lambda r: f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else ""),
)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an operator token. It is printed once; only its hash is stored."""
    settings = load_settings(database_url=database_url)
    token_id, token = _with_store(settings, lambda s: s.create_operator_token(name))
    if as_json:
        print_json({"id": token_id, "name": name, "token": token})
        return
    console.print(f"created {token_id} ({name}); the token, shown only now:")
    print(token)


@token_app.command("list")
def token_list(database_url: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List operator tokens (ids and names; the tokens themselves are not kept)."""
    settings = load_settings(database_url=database_url)
    rows = _with_store(settings, lambda s: s.list_operator_tokens())
    if as_json:
        print_json([{k: str(v) if v else v for k, v in r.items()} for r in rows])
        return
    show(rows, TOKEN_COLUMNS, title="operator tokens", as_json=False)


@token_app.command("revoke")
def token_revoke(token_id: str, database_url: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke an operator token by its id (see `postback token list`)."""
    from postback.store.errors import NotFound

    settings = load_settings(database_url=database_url)
    try:
        _with_store(settings, lambda s: s.revoke_operator_token(token_id))
    except NotFound as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    said(
        f"revoked {token_id}; it stops working within seconds on every server",
        {"id": token_id, "revoked": True},
        as_json=as_json,
    )
