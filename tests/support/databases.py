"""Test databases: a migrated template built once per session, cloned for each test.

Running Alembic for every test's fresh database was most of the suite's setup time. Instead,
each session migrates one template per kind from the code under test (so it is always at
this tree's head, checked when it is built) and every test gets a copy of it:

- PostgreSQL: ``CREATE DATABASE x TEMPLATE pb_tmpl_<time>_<random>``. The name is unique
  per run, so suites running at once on a shared server never touch each other's template;
  it is dropped when the session ends. Once built the template refuses connections
  (``ALLOW_CONNECTIONS false``): CREATE DATABASE ... TEMPLATE fails while any session is
  connected to its source, so nothing may stay connected to it. The copy is retried
  briefly in case the server still counts a connection that is closing.
  Copying a database and dropping it take the server a second or more each on a busy
  machine, so ``PgClones`` makes the next copies ahead and drops used ones behind, on a
  thread of its own, while the tests run: a test waits only when it outruns them.
- SQLite: one migrated file, copied byte for byte per test.

Tests of the migrations themselves ask for ``empty_database_url`` and run Alembic for real.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from postback.store.migrate import current_revision, head_revision, migrate
from postback.store.store import Store

TEMPLATE_PREFIX = "pb_tmpl_"
# Templates of runs that died without their teardown are dropped after this long.
STALE_AFTER_S = 6 * 3600


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (pgserver's URLs keep their ?host=... query)."""
    address, _, query = url.partition("?")
    base, _, _ = address.rpartition("/")
    return f"{base}/{name}" + (f"?{query}" if query else "")


def new_name(prefix: str = "pb_test_") -> str:
    return f"{prefix}{secrets.token_hex(6)}"


async def create_db(admin_url: str, name: str, template: str | None = None) -> None:
    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    conn = await asyncpg.connect(admin_url)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                await conn.execute(sql)
                return
            except asyncpg.ObjectInUseError:
                # "source database ... is being accessed by other users": a connection to
                # the template that is still closing. Brief, so a short retry covers it.
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def drop_db(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _migrate_and_check(url: str) -> None:
    store = Store.connect(url)
    try:
        await migrate(store.engine)
        at = await current_revision(store.engine)
    finally:
        await store.close()  # disposes the pool: no connection stays open to the template
    assert at == head_revision(), f"template migrated to {at}, the code's head is {head_revision()}"


async def build_pg_template(admin_url: str) -> str:
    """Migrate a new template database to this tree's head; returns its name."""
    await _drop_stale_templates(admin_url)
    name = f"{TEMPLATE_PREFIX}{int(time.time())}_{secrets.token_hex(4)}"
    await create_db(admin_url, name)
    try:
        await _migrate_and_check(with_database(admin_url, name))
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        finally:
            await conn.close()
    except BaseException:
        await drop_db(admin_url, name)
        raise
    return name


async def _drop_stale_templates(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        names = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", TEMPLATE_PREFIX + "%"
        )
    finally:
        await conn.close()
    for (name,) in names:
        stamp = name[len(TEMPLATE_PREFIX) :].partition("_")[0]
        if stamp.isdigit() and time.time() - int(stamp) > STALE_AFTER_S:
            await drop_db(admin_url, name)


async def build_sqlite_template(path: Path) -> Path:
    """Migrate one SQLite file to this tree's head, with nothing left in its WAL."""
    await _migrate_and_check(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240 (once, at setup)
    return path


def clone_sqlite(template: Path, target: Path) -> str:
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


class PgClones:
    """Copies of a template database, made ``ahead`` at a time before tests ask for them and
    dropped after them, by an event loop in a thread of its own."""

    def __init__(self, admin_url: str, template: str, ahead: int = 2) -> None:
        self.admin_url = admin_url
        self.template = template
        self.ahead = ahead
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._ready: asyncio.Queue[str | BaseException] = self._call(self._new_queue)
        self._making = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._submit(self._fill())

    async def _new_queue(self) -> asyncio.Queue[str | BaseException]:
        return asyncio.Queue()

    def _call(self, fn: object, timeout: float = 300) -> object:
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(timeout)  # type: ignore[operator]

    def _submit(self, coro: object) -> concurrent.futures.Future[object]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]

    def _spawn(self, coro: object) -> None:
        task = self._loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self) -> None:
        while self._ready.qsize() + self._making < self.ahead:
            self._making += 1
            self._spawn(self._make())

    async def _make(self) -> None:
        name = new_name()
        try:
            await create_db(self.admin_url, name, template=self.template)
            await self._ready.put(name)
        except Exception as exc:  # handed to the test that takes it
            await self._ready.put(exc)
        finally:
            self._making -= 1

    async def _take(self) -> str:
        await self._fill()
        got = await self._ready.get()
        await self._fill()
        if isinstance(got, BaseException):
            raise got
        return got

    def take(self) -> str:
        """The name of a fresh copy of the template, for one test."""
        return self._call(self._take)  # type: ignore[return-value]

    def give_back(self, name: str) -> None:
        """Drop a used copy, without waiting for it."""

        async def drop() -> None:
            self._spawn(drop_db(self.admin_url, name))

        self._submit(drop())

    def close(self) -> None:
        """Wait for the drops still running and drop the copies nobody took."""

        async def drain() -> None:
            self.ahead = 0
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            unused = [self._ready.get_nowait() for _ in range(self._ready.qsize())]
            names = [name for name in unused if isinstance(name, str)]
            await asyncio.gather(*(drop_db(self.admin_url, name) for name in names))

        try:
            self._call(drain)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


@contextlib.contextmanager
def own_cluster(prefix: str) -> Iterator[Any]:
    """A PostgreSQL cluster of the test's own, from the pgserver wheel, in a directory of
    its own under the system's temporary directory (pgserver, run as root, opens the path's
    parents to its system user; pytest's own temporary tree keeps resetting its root to
    0700, which would lock out a cluster another test worker starts at the same time)."""
    import pgserver

    path = Path(tempfile.mkdtemp(prefix=prefix))
    server = pgserver.get_server(path, cleanup_mode="stop")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(path, ignore_errors=True)
