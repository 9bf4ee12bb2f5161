"""SQLite's disk space: freed pages handed back to the file system (incremental vacuum) and
what each table holds, for the dashboard."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback.store.sqlite.raw import sqlite_thread

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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


async def table_sizes(conn: AsyncConnection, tables: Sequence[str]) -> dict[str, Row]:
    sizes: dict[str, int | None] = dict.fromkeys(tables)
    try:
        # dbstat (compiled into most builds): bytes per table and per index; indexes are
        # counted with the table they index.
        found = await conn.execute(
            sa.text(
                "SELECT m.tbl_name AS name, SUM(s.pgsize) AS bytes FROM dbstat s"
                " JOIN sqlite_schema m ON m.name = s.name GROUP BY m.tbl_name"
            )
        )
        sizes.update({r.name: int(r.bytes) for r in found if r.name in sizes})
    except sa.exc.OperationalError:  # a build without dbstat: sizes unknown
        pass
    out: dict[str, Row] = {}
    for name in tables:
        rows = await conn.scalar(sa.text(f'SELECT count(*) FROM "{name}"'))
        out[name] = {"rows": int(rows or 0), "bytes": sizes[name]}
    return out
