"""The sqlite3 connection under the pooled SQLAlchemy one, for the hot paths on SQLite
(ingest, claim, record): a whole transaction in one call into the connection's thread
instead of a thread handoff, and SQLAlchemy's work, for every statement.

Values are written exactly as SQLAlchemy writes them on SQLite (the tests compare the rows
both paths write), so the rest of the store reads them back unchanged.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
Runner = Callable[..., Awaitable[Any]]

# SQLAlchemy's SQLite DATETIME storage format, for naive UTC values.
_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


@contextlib.asynccontextmanager
async def sqlite_thread(engine: AsyncEngine) -> AsyncIterator[Runner]:
    """``run(fn, *args)``: ``fn(sqlite3_connection, *args)`` in the connection's own thread,
    with the connection checked out of the pool (nothing else uses it meanwhile).

    aiosqlite has no public call for this; its ``_execute`` (queue a function for the
    connection's thread) has been stable since 0.17 and the store's tests exercise it."""
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        execute = getattr(driver, "_execute", None)
        if execute is None:  # pragma: no cover - an aiosqlite without it
            raise RuntimeError("this aiosqlite version cannot run a function in its thread")

        async def run(fn: Callable[..., T], *args: Any) -> T:
            return await execute(fn, driver._conn, *args)  # type: ignore[no-any-return]

        yield run


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Any:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on any error), as the engine's own transactions."""
    cur = db.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        yield cur
        cur.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # a failed COMMIT can leave it open (SQLITE_BUSY)
            with contextlib.suppress(sqlite3.Error):
                cur.execute("ROLLBACK")
        raise


def stamp(value: datetime | None) -> str | None:
    """A datetime as SQLAlchemy stores it on SQLite (UTC, naive, microseconds)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC).strftime(_DATETIME)


def json_text(value: Any) -> str | None:
    """A JSON column's text, as SQLAlchemy writes it (``json.dumps``)."""
    return None if value is None else json.dumps(value)


def json_value(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)
