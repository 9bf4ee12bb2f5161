"""SQLite's disk space: freed pages handed back to the file system (incremental vacuum) and
what each table holds, for the dashboard."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from postback.store.sqlite.raw import sqlite_thread

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

Row = dict[str, Any]
# Pages returned per write transaction: 256 pages of 4 KiB (1 MiB) take a few ms.
STEP_PAGES = 256
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


async def give_back_space(engine: AsyncEngine, max_pages: int) -> int:
    """Incremental vacuum in steps of STEP_PAGES, each its own short transaction, so
    writers waiting for the lock get it between steps. Only on a file whose auto_vacuum is
    INCREMENTAL (new files are, store/engine.py); others return 0."""
    given = 0
    while given < max_pages:
        async with sqlite_thread(engine) as run:
            step = await run(_vacuum_step, min(STEP_PAGES, max_pages - given))
        if step == 0:
            break
        given += step
    return given


def _vacuum_step(db: sqlite3.Connection, pages: int) -> int:
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != INCREMENTAL:
        return 0
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    if free == 0:
        return 0
    # executescript steps the pragma to its end (a plain execute frees a single page); it
    # commits whatever is open first, so the transaction is in the script.
    try:
        db.executescript(f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({int(pages)}); COMMIT;")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return int(free - db.execute("PRAGMA freelist_count").fetchone()[0])


async def table_sizes(engine: AsyncEngine, tables: Sequence[str]) -> dict[str, Row]:
    """Rows and bytes per table, read through a connection of its own in a thread: counting
    and sizing reads each table whole (seconds over millions of rows), and the pooled
    connection begins every transaction IMMEDIATE, so measuring through it held the write
    lock all that time (ingest stopped; at 10 M attempts another process's BEGIN waited
    out its 10 s busy timeout). A plain read in WAL mode blocks no writer."""
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        async with sqlite_thread(engine) as run:  # no file to open beside it: the pool's
            return await run(_measure, tables)
    return await asyncio.to_thread(_measure_file, path, tables)


def _measure_file(path: str, tables: Sequence[str]) -> dict[str, Row]:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=10000")
        return _measure(db, tables)
    finally:
        db.close()


def _measure(db: sqlite3.Connection, tables: Sequence[str]) -> dict[str, Row]:
    sizes: dict[str, int | None] = dict.fromkeys(tables)
    try:
        # dbstat (compiled into most builds): bytes per table and per index; indexes are
        # counted with the table they index.
        found = db.execute(
            "SELECT m.tbl_name AS name, SUM(s.pgsize) AS bytes FROM dbstat s"
            " JOIN sqlite_schema m ON m.name = s.name GROUP BY m.tbl_name"
        ).fetchall()
        sizes.update({name: int(size) for name, size in found if name in sizes})
    except sqlite3.OperationalError:  # a build without dbstat: sizes unknown
        pass
    out: dict[str, Row] = {}
    for name in tables:
        rows = db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        out[name] = {"rows": int(rows or 0), "bytes": sizes[name]}
    return out
