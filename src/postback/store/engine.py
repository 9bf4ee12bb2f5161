"""Connecting to SQLite or PostgreSQL: URLs, pools, per-connection settings."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """The SQLAlchemy async URL for a user-facing ``sqlite:///…`` or ``postgresql://…``."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    for scheme in ("postgresql:", "postgres:"):
        if url.startswith(scheme):
            return "postgresql+asyncpg:" + url[len(scheme) :]
    if url.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:")):
        return url
    raise ValueError(f"unsupported database URL (use sqlite:/// or postgresql://): {url!r}")


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite"):
        _create_private(sa.engine.make_url(url).database)
        # SQLite has one writer anyway: one connection per process serialises writes in
        # Python instead of in busy-waits, and every read sees the last commit.
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
        sa.event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    return create_async_engine(
        url,
        # A fixed pool: connections opened past it were closed again on return, and under
        # steady load that churn (connect, authenticate, introspect) cost POST /msg/ much
        # of its throughput (docs/performance.md). A request beyond the pool waits for one.
        pool_size=pool_size,
        max_overflow=0,
        # No pre-ping: it costs a round trip per checkout. A connection found dead after a
        # restart fails its statement (a 503, retried by workers) and SQLAlchemy then drops
        # every pooled connection opened before it.
        pool_recycle=1800,
    )


def _create_private(path: str | None) -> None:
    """Create a new SQLite file readable by its owner only (0600), as the key file beside
    it is: it holds payloads and token hashes. SQLite gives its -wal and -shm files the
    database file's mode. An existing file keeps the mode its owner gave it."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    # A missing folder is SQLite's to report, with its own message.
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let us issue BEGIN ourselves (below) instead of the driver's implicit transactions.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed (acknowledged) message survives power loss, not only a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # The scheduler probes the queue's index once per endpoint with work: keep its pages in
    # memory (64 MiB of cache; SQLite's default is 2 MiB, a tenth of a million-row queue).
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    # IMMEDIATE takes the write lock up front, so a second process (a CLI, a restarted
    # server) waits on busy_timeout instead of failing with SQLITE_BUSY mid-transaction.
    conn.exec_driver_sql("BEGIN IMMEDIATE")
