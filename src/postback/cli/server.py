"""The server commands: ``serve`` (API and worker in one process), ``api``, ``worker``, and
``config-doc``; with what the database commands (postback.cli.database) share with them:
settings from the environment and flags, and a configuration error as exit status 2."""

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

from postback.config import Settings, SettingsError

# The server and database modules load only for the commands that use them: the client
# commands start in a fraction of the time.
if TYPE_CHECKING:
    from postback.store.secretbox import SecretBox
    from postback.store.store import Store

console = Console()

DatabaseOpt = Annotated[
    str | None, typer.Option("--database-url", help="overrides POSTBACK_DATABASE_URL")
]
HostOpt = Annotated[str | None, typer.Option(help="overrides POSTBACK_HOST")]
PortOpt = Annotated[int | None, typer.Option(help="overrides POSTBACK_PORT")]


def load_settings(**overrides: object) -> Settings:
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
            from sqlalchemy.exc import IntegrityError

            try:
                await store.add_operator_token(settings.admin_token, "POSTBACK_ADMIN_TOKEN")
            except IntegrityError:
                # Another process starting at the same moment (an api beside a worker)
                # installed it between the check and the insert: it is there, as wanted.
                if not await store.operator_token_valid(settings.admin_token):
                    raise
                return None
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
    collection walks those objects again, stalling the loop long enough to delay a fan-out's
    first delivery (measured: docs/performance.md)."""
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


def serve(database_url: DatabaseOpt = None, host: HostOpt = None, port: PortOpt = None) -> None:
    """API and worker in one process (the embedded default, SQLite)."""
    _serve_http(load_settings(database_url=database_url, host=host, port=port), worker=True)


def api(database_url: DatabaseOpt = None, host: HostOpt = None, port: PortOpt = None) -> None:
    """The HTTP API alone; run workers beside it with `postback worker`."""
    _serve_http(load_settings(database_url=database_url, host=host, port=port), worker=False)


def worker(database_url: DatabaseOpt = None) -> None:
    """The delivery worker alone; stops cleanly on SIGTERM or SIGINT."""
    settings = load_settings(database_url=database_url)
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


def config_doc_command(
    path: Annotated[Path, typer.Argument(help="where to write it")] = Path("docs/configuration.md"),
) -> None:
    """Write the configuration reference (every POSTBACK_* setting) from the Settings class."""
    from postback.cli import config_doc

    changed = config_doc.write(path)
    console.print(f"{path} {'written' if changed else 'is up to date'}")
