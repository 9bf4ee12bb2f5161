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
- SQLite: one migrated file, copied byte for byte per test.

Tests of the migrations themselves ask for ``empty_database_url`` and run Alembic for real.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sqlite3
import time
from pathlib import Path

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
