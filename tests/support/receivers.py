"""A scripted webhook receiver: a real aiohttp server on 127.0.0.1, in its own thread, so sync
tests (the svix SDK) and async tests can both use it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from tests.support.polling import NotYet, eventually

Behaviour = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    peer_port: int


def ok(status: int = 200, body: str = "ok") -> Behaviour:
    async def respond(_: web.Request, __: int) -> web.StreamResponse:
        return web.Response(status=status, text=body)

    return respond


def fail(status: int = 500, body: str = "error") -> Behaviour:
    return ok(status, body)


def fail_then_ok(n: int, status: int = 500) -> Behaviour:
    async def respond(_: web.Request, nth: int) -> web.StreamResponse:
        return web.Response(status=status if nth < n else 200, text="error" if nth < n else "ok")

    return respond


def hang(seconds: float) -> Behaviour:
    async def respond(_: web.Request, __: int) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(text="late")

    return respond


def redirect(location: str) -> Behaviour:
    async def respond(_: web.Request, __: int) -> web.StreamResponse:
        return web.Response(status=302, headers={"location": location})

    return respond


def big_body(nbytes: int) -> Behaviour:
    async def respond(_: web.Request, __: int) -> web.StreamResponse:
        return web.Response(body=b"x" * nbytes)

    return respond


class Receiver:
    def __init__(self) -> None:
        self._routes: dict[str, Behaviour] = {}
        self._received: list[Received] = []
        self._open: dict[str, int] = {}  # requests being answered now, per path
        self._peak: dict[str, int] = {}  # the most of them at once
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def route(self, path: str, behaviour: Behaviour) -> str:
        self._routes[path] = behaviour
        return self.url + path

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        item = Received(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            at=time.time(),
            peer_port=peer[1] if peer else 0,
        )
        path = request.path
        with self._lock:
            nth = sum(1 for r in self._received if r.path == path)
            self._received.append(item)
            now = self._open[path] = self._open.get(path, 0) + 1
            self._peak[path] = max(self._peak.get(path, 0), now)
        try:
            behaviour = self._routes.get(path)
            if behaviour is None:
                return web.Response(status=404, text="no such route")
            return await behaviour(request, nth)
        finally:
            with self._lock:
                self._open[path] -= 1

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def start(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Handlers still sleeping (a hanging receiver) end here rather than being destroyed.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def peak_open(self, path: str) -> int:
        """The most requests on ``path`` that were being answered at the same time."""
        with self._lock:
            return self._peak.get(path, 0)

    def wait_for(self, count: int, path: str | None = None, timeout: float = 30) -> list[Received]:
        """At least ``count`` requests on ``path`` (any path if None): all of them so far."""

        def enough() -> list[Received] | None:
            got = self.received(path)
            return got if len(got) >= count else None

        try:
            return eventually(enough, timeout, interval=0.02)
        except NotYet:
            got = len(self.received(path))
            where = path or "any path"
            raise AssertionError(f"expected {count} requests on {where}, got {got}") from None
