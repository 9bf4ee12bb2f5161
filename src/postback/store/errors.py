"""Errors the store raises (the API maps them to 404 and 409), and how to tell a database
outage from a bug."""

from __future__ import annotations

import sqlite3

import asyncpg
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError


class NotFound(LookupError):
    """The id (or uid) names nothing in this scope."""


class Conflict(Exception):
    """A unique field (uid, name, eventId) is already taken."""


_OUTAGES = (
    OperationalError,
    sqlite3.OperationalError,  # the raw SQLite paths (locked past busy_timeout, I/O)
    InterfaceError,
    DisconnectionError,
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # the server is shutting down, starting up, or was told to stop
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.CannotConnectNowError,
)


def is_outage(exc: BaseException | None) -> bool:
    """A lost or refused database connection, as opposed to a bug in a query. SQLAlchemy
    wraps driver errors, so the whole chain of causes is looked at."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, _OUTAGES):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
        seen += 1
    return False
