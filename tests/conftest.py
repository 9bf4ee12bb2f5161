"""Fixtures shared by the suite: a fresh SQLite file and a fresh PostgreSQL database per test,
and a real postback server (uvicorn, API + worker) on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import secrets
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from svix.api import Svix, SvixOptions

from postback.config import Settings
from postback.store.migrate import migrate
from postback.store.secretbox import SecretBox
from postback.store.store import Store

T = TypeVar("T")
TOKEN = "pb_test_operator_token"
SECRET_KEY = base64.b64encode(b"k" * 32).decode()  # encrypts endpoint secrets in tests
SECRET_BOX = SecretBox(b"k" * 32)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


# ---- PostgreSQL: which server --------------------------------------------------------


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """POSTBACK_TEST_DATABASE_URL, else the server on 127.0.0.1:5432, else a throwaway one
    from the pgserver wheel. Never a skip: with no PostgreSQL the suite fails loudly."""
    explicit = os.environ.get("POSTBACK_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    # POSTBACK_TEST_PG=pgserver forces the throwaway server (to test that path).
    if os.environ.get("POSTBACK_TEST_PG") != "pgserver" and run_sync(_answers(local)):
        yield local
        return
    import pgserver  # PostgreSQL binaries shipped in a wheel

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _with_database(url: str, name: str) -> str:
    # pgserver's URLs carry the socket directory in the query: ?host=/tmp/...
    address, _, query = url.partition("?")
    base, _, _ = address.rpartition("/")
    return f"{base}/{name}" + (f"?{query}" if query else "")


async def _create_db(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_db(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'postback.db'}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    name = f"pb_test_{secrets.token_hex(6)}"
    run_sync(_create_db(admin, name))
    try:
        yield _with_database(admin, name)
    finally:
        run_sync(_drop_db(admin, name))


@pytest.fixture
async def store(database_url: str) -> Any:
    s = Store.connect(database_url, secret_box=SECRET_BOX)
    await migrate(s.engine)
    try:
        yield s
    finally:
        await s.close()


# ---- a running server ----------------------------------------------------------------


def server_settings(database_url: str, **overrides: Any) -> Settings:
    base = {
        "database_url": database_url,
        "admin_token": TOKEN,
        "retry_schedule": (0.05, 0.1),
        # The breaker on the same scaled-down time as the retries.
        "circuit_cooldown": 0.2,
        "circuit_max_cooldown": 1.0,
        "request_timeout": 2.0,
        "poll_interval": 0.1,
        "allow_private_networks": True,  # receivers are on 127.0.0.1
        "secret_key": SECRET_KEY,
    }
    return Settings(**(base | overrides))


class ServerHandle:
    """postback serve, in a thread with its own loop, on a loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.token = TOKEN
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._error: BaseException | None = None
        self.store: Store | None = None

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        import uvicorn

        from postback.api.app import create_app
        from postback.cli import ensure_operator_token

        self.store = Store.connect(self.settings.database_url, secret_box=SECRET_BOX)
        await migrate(self.store.engine)
        await ensure_operator_token(self.store, self.settings)
        app = create_app(self.settings, self.store, worker=True)
        self.app = app
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        serving = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        self._ready.set()
        try:
            await serving
        finally:
            await self.store.close()

    def start(self) -> ServerHandle:
        self._thread.start()
        self._ready.wait(30)
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        self._sock.close()

    def call(self, fn: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
        """Run ``fn(store)`` on the server's own loop (the store belongs to it)."""
        assert self.store is not None
        return asyncio.run_coroutine_threadsafe(fn(self.store), self._loop).result(30)

    def svix(self, token: str | None = None) -> Svix:
        options = SvixOptions(server_url=self.url, retry_schedule=[], timeout=10)
        return Svix(token or self.token, options)


@pytest.fixture
def make_server(database_url: str) -> Iterator[Callable[..., ServerHandle]]:
    started: list[ServerHandle] = []

    def make(**overrides: Any) -> ServerHandle:
        handle = ServerHandle(server_settings(database_url, **overrides)).start()
        started.append(handle)
        return handle

    yield make
    for handle in started:
        handle.stop()


@pytest.fixture
def server(make_server: Callable[..., ServerHandle]) -> ServerHandle:
    return make_server()


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real HTTP receiver on 127.0.0.1 (tests/receivers.py), scripted per path."""
    from tests.receivers import Receiver

    with Receiver() as r:
        yield r
