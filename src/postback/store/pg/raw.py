"""The asyncpg connection under a pooled SQLAlchemy one, for the few hot statements that
are written for PostgreSQL alone (ingest, recording attempts): one round trip each, no
SQLAlchemy statement machinery per row."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import asyncpg

from postback.store.errors import is_outage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_BROKEN = (asyncio.CancelledError, asyncpg.InternalClientError, asyncpg.InterfaceError)


@contextlib.asynccontextmanager
async def raw_connection(engine: AsyncEngine) -> AsyncIterator[tuple[Any, AsyncConnection]]:
    """``(asyncpg connection, its SQLAlchemy connection)``, checked out of the pool."""
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        try:
            yield raw, conn
        except BaseException as exc:
            # The pool cannot see failures on the driver's own connection: a dead one (the
            # server restarted) or one left mid-operation (a cancelled request) must not go
            # back to it. An error the server reported, or our own NotFound, leaves it fine.
            if isinstance(exc, _BROKEN) or is_outage(exc):
                with contextlib.suppress(Exception):
                    await conn.invalidate()
            if isinstance(exc, asyncpg.InternalClientError):
                # What a pooled connection the server dropped while idle (a fast shutdown)
                # says on its next use: an outage, not a bug.
                raise ConnectionError(f"database connection lost: {exc}") from exc
            raise
