"""A real postback server (uvicorn, API + worker) in a thread of the test process, on a
loopback port, and the constants the suite shares."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

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
    """postback serve, in a thread with its own loop, on a loopback port. Like serve it
    migrates the database first, unless told it is a copy of the migrated template."""

    def __init__(self, settings: Settings, *, migrated: bool = False) -> None:
        self.settings = settings
        self._migrated = migrated
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
        if not self._migrated:
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
        options = SvixOptions(server_url=self.url, retry_schedule=[], timeout=30)
        return Svix(token or self.token, options)
