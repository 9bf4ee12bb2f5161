"""Accepting messages on PostgreSQL: a batch (see group_commit.py) in two round trips on
the driver's own connection.

The general path (messages.py) is a transaction of seven round trips per message: BEGIN,
the app, the message, the endpoints, the deliveries, NOTIFY, COMMIT. Here the batch's apps
and their live endpoints come in one read, and the messages, their deliveries and the
NOTIFY go in one statement — data-modifying CTEs are atomic, so nothing is acknowledged
that is not durable, exactly as before. Reading the endpoints outside the write is the same
as the messages arriving a moment earlier; an endpoint deleted in between is skipped by the
write itself. If the write fails for a reason that is not an outage (an application deleted
in between), each message is tried alone, so only its own caller sees its error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from postback import ids
from postback.store.backend import Written
from postback.store.core import OPERATIONAL_APP_ID
from postback.store.errors import NotFound, is_outage
from postback.store.group_commit import SEEN
from postback.store.pg.feed import REGISTER_FEED_WRITER
from postback.store.pg.partitions import missing_partition
from postback.store.pg.raw import raw_connection
from postback.store.routing import RoutedEndpoint, route

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

Row = dict[str, Any]

# NULLIF: an unset JSON column holds JSON null, which would otherwise be decoded (by the
# standard library's json) per endpoint and column, a cost that grows with the fan-out
# (docs/performance.md).
_ROUTING = """
SELECT a.id AS app_id, a.uid, e.id, e.product,
       NULLIF(e.event_types, 'null') AS event_types, NULLIF(e.channels, 'null') AS channels,
       NULLIF(e.payload_filter, 'null') AS payload_filter,
       NULLIF(e.projection, 'null') AS projection, e.ordered
FROM applications a
LEFT JOIN endpoints e ON e.app_id = a.id AND NOT e.disabled
WHERE a.id = ANY($1::text[]) OR a.uid = ANY($2::text[])
"""

# An ordered delivery is its key's head (store/heads.py) when it is the first of its key in
# the batch and the key has nothing unfinished; a busy key's first unfinished row is held
# FOR SHARE, so a recorder finishing it commits first (then it is not seen) or marks the
# next head after this commits (then it sees this row).
_KEY_BUSY = """
SELECT 1 FROM deliveries o
WHERE o.endpoint_id = x.endpoint_id AND o.ordering_key = x.okey
  AND o.ordering_key IS NOT NULL AND o.status IN (1, 3)
ORDER BY o.endpoint_id, o.ordering_key, o.seq, o.id LIMIT 1 FOR SHARE
"""

# The events feed's writer lock comes first, then the transaction id (written as tx): the
# feed reads below the oldest registered writer and counts on no writer getting an id
# before it holds the lock (store/events.py). xid reads from lk and every insert reads
# from xid, so nothing is written before the lock is held.
_WRITE = f"""
WITH lk AS MATERIALIZED (SELECT {REGISTER_FEED_WRITER}),
xid AS MATERIALIZED (SELECT pg_current_xact_id()::text::bigint AS tx FROM lk),
u AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[],
                         $6::jsonb[], $7::jsonb[], $8::timestamptz[], $9::timestamptz[],
                         $10::timestamptz[], $13::text[], $14::text[], $15::text[])
        WITH ORDINALITY AS u(id, app_id, event_type, event_id, payload, channels, tags,
                             created_at, deliver_at, expunge_at, trace_context, product,
                             ordering_key, n)
),
e AS (
    -- eventId dedupe (messages is partitioned: no unique index of its own can hold it).
    -- The first of a batch's messages with one eventId claims it, as the first insert did
    -- under ON CONFLICT DO NOTHING; a message whose eventId is taken is not written.
    INSERT INTO message_event_ids (app_id, event_id, msg_id)
    SELECT DISTINCT ON (u.app_id, u.event_id) u.app_id, u.event_id, u.id
    FROM u CROSS JOIN xid
    WHERE u.event_id IS NOT NULL
    ORDER BY u.app_id, u.event_id, u.n
    ON CONFLICT (app_id, event_id) DO NOTHING
    RETURNING msg_id
),
m AS (
    INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags,
                          created_at, deliver_at, expunge_at, trace_context, product,
                          ordering_key, tx)
    SELECT u.id, u.app_id, u.event_type, u.event_id, u.payload, u.channels, u.tags,
           u.created_at, u.deliver_at, u.expunge_at, u.trace_context, u.product,
           u.ordering_key, xid.tx
    FROM u CROSS JOIN xid
    WHERE u.event_id IS NULL OR u.id IN (SELECT msg_id FROM e)
    RETURNING id, seq
), d AS (
    INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count,
                            trigger_type, next_attempt_at, wake_at, lease, rate_slot, payload,
                            note, ordering_key, seq, head, created_at, updated_at)
    SELECT x.id, x.msg_id, x.endpoint_id, x.app_id, x.status, 0, 0, x.due, x.wake, NULL, false,
           x.payload, x.note, x.okey, CASE WHEN x.okey IS NOT NULL THEN m.seq END,
           CASE WHEN x.okey IS NULL OR x.status <> 1 THEN false
                ELSE row_number() OVER (PARTITION BY x.endpoint_id, x.okey, x.status
                                        ORDER BY m.seq, x.id) = 1
                     AND NOT EXISTS ({_KEY_BUSY}) END,
           x.at, x.at
    FROM (SELECT r->>0 AS id, r->>1 AS msg_id, r->>2 AS endpoint_id, r->>3 AS app_id,
                 (r->>4)::smallint AS status, (r->>5)::timestamptz AS due, p.body AS payload,
                 r->>6 AS note, (r->>7)::timestamptz AS at, (r->>8)::timestamptz AS wake,
                 r->>9 AS okey
          FROM jsonb_array_elements($11::jsonb) WITH ORDINALITY AS j(r, n)
          JOIN unnest($12::bytea[]) WITH ORDINALITY AS p(body, n) ON p.n = j.n) AS x
    JOIN m ON m.id = x.msg_id
    WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.id = x.endpoint_id)
    RETURNING next_attempt_at
)
SELECT ARRAY(SELECT id FROM m) AS inserted,
       EXISTS (SELECT 1 FROM d WHERE next_attempt_at IS NOT NULL) AS queued,
       CASE WHEN EXISTS (SELECT 1 FROM d WHERE next_attempt_at IS NOT NULL)
            THEN pg_notify('postback_work', '') END AS notified
"""


def _text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


async def write_messages(
    engine: AsyncEngine,
    items: list[tuple[Row, bool]],
    ensure: Callable[[], Awaitable[Any]] | None = None,
) -> Written:
    """Backend.write_messages on PostgreSQL (see the module doc). A write finding no
    partition for its rows (every process making them stopped for longer than they were
    made ahead, a clock far off) makes them with ``ensure`` and is tried once more."""
    try:
        return await _write(engine, items)
    except Exception as exc:
        if ensure is not None and missing_partition(exc):
            await ensure()
            return await write_messages(engine, items)
        if len(items) == 1 or is_outage(exc):
            raise
    outcomes: list[Any] = []
    queued = False
    for item in items:  # one message's trouble must not fail the others
        try:
            one = await _write(engine, [item])
        except Exception as exc:
            outcomes.append(exc)
        else:
            outcomes.extend(one.outcomes)
            queued = queued or one.queued
    return Written(outcomes, queued)


async def _write(engine: AsyncEngine, items: list[tuple[Row, bool]]) -> Written:
    outcomes: list[Any] = [None] * len(items)
    by_uid = [
        app_ref and not ids.has_prefix(row["app_id"], ids.APPLICATION) for row, app_ref in items
    ]
    refs = [row["app_id"] for row, _ in items]
    wanted_ids = sorted({r for r, uid in zip(refs, by_uid, strict=True) if not uid})
    wanted_uids = sorted({r for r, uid in zip(refs, by_uid, strict=True) if uid})
    msgs: list[Row] = []
    deliveries: list[tuple[Row, Row]] = []
    async with raw_connection(engine) as (raw, _):
        apps: dict[tuple[bool, str], tuple[str, list[RoutedEndpoint]]] = {}
        for r in await raw.fetch(_ROUTING, wanted_ids, wanted_uids):
            app = apps.setdefault((False, r["app_id"]), (r["app_id"], []))
            if r["uid"] is not None:
                apps[True, r["uid"]] = app
            if r["id"] is not None:
                app[1].append(RoutedEndpoint(*r[2:]))
        for n, (row, _) in enumerate(items):
            found = apps.get((by_uid[n], row["app_id"]))
            if found is None or found[0] == OPERATIONAL_APP_ID:  # internal, not an app
                outcomes[n] = NotFound(f"application {row['app_id']!r} not found")
                continue
            row["app_id"] = found[0]
            msgs.append(row)
            deliveries.extend((d, row) for d in route(row, found[1]))
        if not msgs:
            return Written(outcomes, False)
        done = await raw.fetchrow(
            _WRITE,
            [m["id"] for m in msgs],
            [m["app_id"] for m in msgs],
            [m["event_type"] for m in msgs],
            [m["event_id"] for m in msgs],
            [m["payload"] for m in msgs],
            [_text(m["channels"]) for m in msgs],
            [_text(m["tags"]) for m in msgs],
            [m["created_at"] for m in msgs],
            [m["deliver_at"] for m in msgs],
            [m["expunge_at"] for m in msgs],
            # One JSON array of rows: a message to 1,000 endpoints would otherwise have
            # the driver encode 9,000 array elements one by one (see queue.py).
            orjson.dumps(
                [
                    (
                        d["id"],
                        m["id"],
                        d["endpoint_id"],
                        m["app_id"],
                        int(d["status"]),
                        d["next_attempt_at"],
                        d["note"],
                        m["created_at"],
                        d["wake_at"],
                        d["ordering_key"],
                    )
                    for d, m in deliveries
                ]
            ).decode(),
            [d["payload"] for d, _ in deliveries],  # projected bodies: bytes, beside
            [m.get("trace_context") for m in msgs],
            [m.get("product") for m in msgs],
            [m.get("ordering_key") for m in msgs],
        )
    inserted = set(done["inserted"])
    for n, (row, _) in enumerate(items):
        if outcomes[n] is None and row["id"] not in inserted:
            outcomes[n] = SEEN  # the eventId was used before: that message stands
    return Written(outcomes, bool(done["queued"]))
