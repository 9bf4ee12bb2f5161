"""Other sessions on the test's PostgreSQL server, as a busy production server has them: a
transaction held open in another database, a long reader, a session idle in transaction."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from tests.support.databases import create_db, drop_db, with_database


@dataclass
class OpenTransaction:
    conn: asyncpg.Connection
    pid: int
    xid: int


@contextlib.asynccontextmanager
async def open_transaction(url: str, *, reads: str | None = None) -> AsyncIterator[OpenTransaction]:
    """A session whose transaction has an id and stays open until the block ends. With
    ``reads`` (a table), a repeatable-read transaction that has read it first: a report or
    a backup's long snapshot."""
    conn = await asyncpg.connect(url)
    try:
        level = "REPEATABLE READ" if reads else "READ COMMITTED"
        await conn.execute(f"BEGIN ISOLATION LEVEL {level}")
        if reads:
            await conn.fetchval(f"SELECT count(*) FROM {reads}")
        xid = await conn.fetchval("SELECT txid_current()")
        yield OpenTransaction(conn, conn.get_server_pid(), xid)
    finally:
        await conn.close()  # the server rolls the transaction back


@contextlib.asynccontextmanager
async def other_database(admin_url: str) -> AsyncIterator[str]:
    """A fresh database on the same server, dropped afterwards: a neighbour of the test's,
    so holding transactions in it disturbs no other test."""
    name = f"pb_other_{secrets.token_hex(6)}"
    await create_db(admin_url, name)
    try:
        yield with_database(admin_url, name)
    finally:
        await drop_db(admin_url, name)


async def below_old_horizon(url: str, xid: int) -> bool:
    """Whether ``xid`` is still running below the server-wide horizon (pg_snapshot_xmin) that
    the feed used to wait for: the condition that froze it."""
    conn = await asyncpg.connect(url)
    try:
        xmin = await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    finally:
        await conn.close()
    return xmin <= xid
