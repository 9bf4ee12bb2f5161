"""Accepting a message on PostgreSQL in two round trips on the driver's own connection.

The general path (messages.py) is a transaction of seven round trips: BEGIN, the app, the
message, the endpoints, the deliveries, NOTIFY, COMMIT. Here the app and its live endpoints
come in one read, and the message, its deliveries and the NOTIFY go in one statement —
data-modifying CTEs are atomic, so nothing is acknowledged that is not durable, exactly as
before. Reading the endpoints outside the write is the same as the message arriving a moment
earlier; an endpoint deleted in between is skipped by the write itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from postback import ids
from postback.store.errors import NotFound
from postback.store.operational import OPERATIONAL_APP_ID
from postback.store.pgraw import raw_connection

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

Row = dict[str, Any]

# NULLIF: an unset JSON column holds JSON null, which would otherwise be decoded (by the
# standard library's json) per endpoint and column: 25 ms for a message to 1,000 endpoints.
_ROUTING = """
SELECT a.id AS app_id, e.id,
       NULLIF(e.event_types, 'null') AS event_types, NULLIF(e.channels, 'null') AS channels,
       NULLIF(e.payload_filter, 'null') AS payload_filter,
       NULLIF(e.projection, 'null') AS projection
FROM applications a
LEFT JOIN endpoints e ON e.app_id = a.id AND NOT e.disabled
WHERE a.{key} = $1
"""
_ROUTING_BY_ID = _ROUTING.format(key="id")
_ROUTING_BY_UID = _ROUTING.format(key="uid")

_WRITE = """
WITH m AS (
    INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags,
                          created_at, deliver_at, expunge_at)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10)
    ON CONFLICT (app_id, event_id) DO NOTHING
    RETURNING id
), d AS (
    INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count,
                            trigger_type, next_attempt_at, lease, rate_slot, payload, note,
                            created_at, updated_at)
    SELECT x.id, m.id, x.endpoint_id, $2, x.status, 0, 0, x.due, NULL, false, x.payload,
           x.note, $8, $8
    FROM m,
         unnest($11::text[], $12::text[], $13::smallint[], $14::timestamptz[], $15::bytea[],
                $16::text[]) AS x(id, endpoint_id, status, due, payload, note)
    WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.id = x.endpoint_id)
    RETURNING next_attempt_at
)
SELECT (SELECT count(*) FROM m) AS inserted,
       (SELECT count(*) FROM d WHERE next_attempt_at IS NOT NULL) AS queued,
       CASE WHEN EXISTS (SELECT 1 FROM d WHERE next_attempt_at IS NOT NULL)
            THEN pg_notify('postback_work', '') END AS notified
"""


class _Endpoint:
    """An endpoint row as ``_route`` reads it."""

    __slots__ = ("channels", "event_types", "id", "payload_filter", "projection")

    def __init__(self, record: Any) -> None:
        self.id = record["id"]
        self.event_types = _json(record["event_types"])
        self.channels = _json(record["channels"])
        self.payload_filter = _json(record["payload_filter"])
        self.projection = _json(record["projection"])


def _json(value: Any) -> Any:
    # SQLAlchemy's codecs on the connection decode JSON; a bare connection gives text.
    return orjson.loads(value) if isinstance(value, str) else value


def _text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class IngestPgMixin:
    """Comes before MessagesMixin among Store's bases: its ``_create_message_pg`` replaces
    the declaration there, and it uses MessagesMixin's ``_route`` and event-id lookup."""

    engine: AsyncEngine
    clock: Callable[[], datetime]
    _route: Callable[..., list[Row]]
    _message_by_event_id: Callable[..., Any]
    _notify_work: Callable[[], None]

    async def _create_message_pg(self, row: Row, *, app_ref: bool) -> tuple[Row, bool]:
        ref = row["app_id"]
        routing = _ROUTING_BY_ID if not app_ref or ids.has_prefix(ref, ids.APPLICATION) else ""
        async with raw_connection(self.engine) as (raw, conn):
            records = await raw.fetch(routing or _ROUTING_BY_UID, ref)
            if not records or ref == OPERATIONAL_APP_ID:  # internal, not an app
                raise NotFound(f"application {ref!r} not found")
            row["app_id"] = records[0]["app_id"]
            live = [_Endpoint(r) for r in records if r["id"] is not None]
            deliveries = self._route(row, live)
            done = await raw.fetchrow(
                _WRITE,
                row["id"],
                row["app_id"],
                row["event_type"],
                row["event_id"],
                row["payload"],
                _text(row["channels"]),
                _text(row["tags"]),
                row["created_at"],
                row["deliver_at"],
                row["expunge_at"],
                [d["id"] for d in deliveries],
                [d["endpoint_id"] for d in deliveries],
                [int(d["status"]) for d in deliveries],
                [d["next_attempt_at"] for d in deliveries],
                [d["payload"] for d in deliveries],
                [d["note"] for d in deliveries],
            )
            if not done["inserted"]:  # the eventId was used before: that message stands
                existing = await self._message_by_event_id(conn, row["app_id"], row["event_id"])
                if existing is not None:
                    return existing, False
                raise RuntimeError("message neither inserted nor found")  # pragma: no cover
        if done["queued"]:
            self._notify_work()
        return row, True
