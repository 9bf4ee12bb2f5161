"""The ``postback`` command: run the service (serve, api, worker), manage its database
(migrate, check, token), and the client commands (cli_resources, cli_messages, cli_listen)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import secrets
import signal
import socket
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from postback import cli_listen, cli_messages, cli_resources, config_doc
from postback.config import Settings, SettingsError

# The server and database modules load only for the commands that use them: the client
# commands start in a fraction of the time.
if TYPE_CHECKING:
    from postback.store.secretbox import SecretBox
    from postback.store.store import Store

app = typer.Typer(help="postback: self-hosted webhook delivery.", no_args_is_help=True)
console = Console()

DatabaseOpt = Annotated[
    str | None, typer.Option("--database-url", help="overrides POSTBACK_DATABASE_URL")
]
HostOpt = Annotated[str | None, typer.Option(help="overrides POSTBACK_HOST")]
PortOpt = Annotated[int | None, typer.Option(help="overrides POSTBACK_PORT")]


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        console.print(f"[red]configuration error:[/] {exc}")
        raise typer.Exit(2) from None


def _logging(settings: Settings) -> None:
    from postback.metrics import setup_logging

    try:
        setup_logging(settings.log_format, settings.log_level)
    except SettingsError as exc:
        console.print(f"[red]configuration error:[/] {exc}")
        raise typer.Exit(2) from None


async def ensure_operator_token(store: Store, settings: Settings) -> str | None:
    """Install the first operator token. Returns it when it was just generated (to print it
    once); only its hash is stored. POSTBACK_ADMIN_TOKEN is installed but never returned:
    its owner has it already, and a start-up log is no place for it."""
    if settings.admin_token:
        if not await store.operator_token_valid(settings.admin_token):
            await store.add_operator_token(settings.admin_token, "POSTBACK_ADMIN_TOKEN")
            console.print("POSTBACK_ADMIN_TOKEN installed as an operator token")
        return None
    if await store.has_operator_tokens():
        return None
    token = "pb_" + secrets.token_urlsafe(32)
    await store.add_operator_token(token, "generated on first start")
    return token


@contextlib.contextmanager
def _tracing(process: str) -> Iterator[None]:
    """OpenTelemetry for a service command, if the OTEL_* variables ask for it; what is
    queued is exported before the command returns."""
    from postback import tracing

    try:
        on = tracing.setup(process)
    except ValueError as exc:  # otlp.ExportError: a variable it cannot follow
        console.print(f"[red]configuration error:[/] {exc}")
        raise typer.Exit(2) from None
    except tracing.MissingSDK as exc:  # an optional extra: the service runs without it
        console.print(f"[yellow]{exc}[/]")
        on = False
    if on:
        from postback.otlp import endpoint_from_env

        console.print(f"tracing: OTLP/HTTP to {endpoint_from_env()}")
    try:
        yield
    finally:
        tracing.shutdown()


def _secret_box(settings: Settings) -> SecretBox:
    from postback.store.secretbox import SecretKeyError, secret_box_for

    try:
        box, note = secret_box_for(settings)
    except SecretKeyError as exc:
        console.print(f"[red]configuration error:[/] {exc}")
        raise typer.Exit(2) from None
    if note:
        console.print(f"[yellow]{note}[/]")
    return box


async def _prepare(settings: Settings) -> Store:
    from postback.store.errors import is_outage
    from postback.store.migrate import migrate as run_migrations
    from postback.store.store import Store

    store = Store.connect(
        settings.database_url,
        secret_box=_secret_box(settings),
        pool_size=settings.database_pool_size,
    )
    if settings.allow_private_networks:
        console.print(
            "[yellow]POSTBACK_ALLOW_PRIVATE_NETWORKS is on: deliveries may reach loopback "
            "and private addresses (for development; turn it off in production)[/]"
        )
    backoff = 0.0
    while True:
        try:
            await run_migrations(store.engine)
            break
        except Exception as exc:
            if not is_outage(exc):
                raise
            # Started before the database (or during its restart): wait for it.
            backoff = min(10.0, backoff * 2 or 0.5)
            console.print(f"[yellow]database unavailable ({exc}); retrying in {backoff:g}s[/]")
            await asyncio.sleep(backoff)
    token = await ensure_operator_token(store, settings)
    if token:
        console.print(
            "[bold green]Operator token[/] (shown once; only its hash is kept):\n"
            f"  [bold]{token}[/]\n"
            "  use it as: Authorization: Bearer <token>"
        )
    return store


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived service on uvloop (a libuv event loop: cheaper sockets and timers than
    asyncio's default selector loop) where it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop does not exist on Windows
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _settle() -> None:
    """Once a service has started: collect, then freeze what is alive (the imported modules,
    the app, the pools) out of the cyclic garbage collector's reach. Unfrozen, each full
    collection walked those ~136,000 objects again, stalling the loop for up to 80 ms (seen
    as a fan-out that waited 136 ms before its first delivery)."""
    gc.collect()
    gc.freeze()


def _quiet_exit_server(config: Any) -> Any:
    import uvicorn

    class QuietExitServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM after shutting down, so the process would end 'killed';
        a clean stop exits 0, so postback takes the signals itself."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def request_exit(self) -> None:
            # A second signal forces the exit, as uvicorn does.
            self.force_exit = self.should_exit
            self.should_exit = True

    return QuietExitServer(config)


def _bind(settings: Settings) -> socket.socket:
    """The listening socket, taken before anything else starts: a busy port stops the
    command before it migrates, creates or prints a token, or starts a worker."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
        sock.listen(2048)  # uvicorn's default backlog
    except OSError as exc:
        sock.close()
        console.print(
            f"[red]cannot listen on {settings.host}:{settings.port}:[/] {exc.strerror or exc}"
        )
        raise typer.Exit(1) from None
    return sock


async def _run_http(settings: Settings, sock: socket.socket, *, worker: bool) -> None:
    import uvicorn

    from postback.api.app import create_app
    from postback.http_limits import uvicorn_options

    store = await _prepare(settings)
    try:
        api = create_app(settings, store, worker=worker)
        config = uvicorn.Config(
            api,
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=False,
            log_config=None,  # uvicorn logs through ours (POSTBACK_LOG_FORMAT)
            **uvicorn_options(settings),  # header size, count and time; keep-alive
        )
        server = _quiet_exit_server(config)
        _settle()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_exit)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        console.print(f"postback listening on http://{shown}:{port}")
        await server.serve(sockets=[sock])
    finally:
        await store.close()
        sock.close()


def _serve_http(settings: Settings, *, worker: bool) -> None:
    _logging(settings)
    sock = _bind(settings)
    try:
        with _tracing("serve" if worker else "api"):
            _run_fast(_run_http(settings, sock, worker=worker))
    finally:
        sock.close()


@app.command()
def serve(database_url: DatabaseOpt = None, host: HostOpt = None, port: PortOpt = None) -> None:
    """API and worker in one process (the embedded default, SQLite)."""
    _serve_http(_settings(database_url=database_url, host=host, port=port), worker=True)


@app.command()
def api(database_url: DatabaseOpt = None, host: HostOpt = None, port: PortOpt = None) -> None:
    """The HTTP API alone; run workers beside it with `postback worker`."""
    _serve_http(_settings(database_url=database_url, host=host, port=port), worker=False)


@app.command()
def worker(database_url: DatabaseOpt = None) -> None:
    """The delivery worker alone; stops cleanly on SIGTERM or SIGINT."""
    settings = _settings(database_url=database_url)
    _logging(settings)

    async def run() -> None:
        from postback.delivery.worker import Worker

        store = await _prepare(settings)
        runner = Worker(store, settings)
        _settle()
        if settings.worker_metrics_port:
            from postback.metrics import serve_worker_metrics

            serve_worker_metrics(settings.host, settings.worker_metrics_port)
            console.print(
                f"worker metrics on http://{settings.host}:{settings.worker_metrics_port}/metrics"
            )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        console.print("postback worker started")
        try:
            await runner.run()
        finally:
            await store.close()

    with _tracing("worker"):
        _run_fast(run())


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


@app.command()
def migrate(database_url: DatabaseOpt = None) -> None:
    """Create or upgrade the database schema."""
    _with_store(_settings(database_url=database_url), None)
    console.print("database is up to date")


@app.command()
def check(
    database_url: DatabaseOpt = None,
    overdue_after: Annotated[
        float, typer.Option(help="seconds past due (or past its lease) that count as stuck")
    ] = 60.0,
    feed_held_after: Annotated[
        float,
        typer.Option(help="seconds a transaction writing messages may hold the events feed back"),
    ] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """Report the delivery queue's and the events feed's health from the database; exit 1 if
    anything is stuck or held back."""
    settings = _settings(database_url=database_url)

    async def read(store: Store) -> tuple[dict[str, Any], dict[str, Any]]:
        return await store.queue_health(overdue_after), await store.feed_health(feed_held_after)

    health, feed = _with_store(settings, read, migrate=False)
    healthy = health["healthy"] and not feed["held_back"]
    if as_json:
        console.print_json(data=health | {"feed": feed, "healthy": healthy})
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
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    database_url: DatabaseOpt = None,
) -> None:
    """Create an operator token. It is printed once; only its hash is stored."""
    settings = _settings(database_url=database_url)
    token_id, token = _with_store(settings, lambda s: s.create_operator_token(name))
    console.print(f"created {token_id} ({name}); the token, shown only now:")
    print(token)


@token_app.command("list")
def token_list(
    database_url: DatabaseOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """List operator tokens (ids and names; the tokens themselves are not kept)."""
    settings = _settings(database_url=database_url)
    rows = _with_store(settings, lambda s: s.list_operator_tokens())
    if as_json:
        console.print_json(data=[{k: str(v) if v else v for k, v in r.items()} for r in rows])
        return
    table = Table(title="operator tokens")
    for column in ("id", "name", "created", "revoked"):
        table.add_column(column)
    for r in rows:
        revoked = f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else ""
        table.add_row(r["id"], r["name"], f"{r['created_at']:%Y-%m-%d %H:%M}", revoked)
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: str, database_url: DatabaseOpt = None) -> None:
    """Revoke an operator token by its id (see `postback token list`)."""
    from postback.store.errors import NotFound

    settings = _settings(database_url=database_url)
    try:
        _with_store(settings, lambda s: s.revoke_operator_token(token_id))
    except NotFound as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"revoked {token_id}; it stops working within seconds on every server")


app.add_typer(cli_resources.app_cli, name="app")
app.add_typer(cli_resources.event_type_cli, name="event-type")
app.add_typer(cli_resources.endpoint_cli, name="endpoint")
app.command()(cli_messages.send)
app.command()(cli_messages.attempts)
app.command()(cli_messages.tail)
app.command()(cli_listen.listen)


@app.command("config-doc")
def config_doc_command(
    path: Annotated[Path, typer.Argument(help="where to write it")] = Path("docs/configuration.md"),
) -> None:
    """Write the configuration reference (every POSTBACK_* setting) from the Settings class."""
    changed = config_doc.write(path)
    console.print(f"{path} {'written' if changed else 'is up to date'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
