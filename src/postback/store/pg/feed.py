"""The events feed's PostgreSQL side (store/events.py explains the horizon): the writer
lock every message-writing transaction takes first, the horizon a feed read is bounded
by, and the report of writers holding the feed back."""

from __future__ import annotations

import sqlalchemy as sa

# pg_advisory_xact_lock_shared(int, int) keys: "pb", "feed". The two-key form lives apart
# from the one-key locks (migrate.py's), and each database has its own.
FEED_WRITER = (0x7062, 0x66656564)
REGISTER_FEED_WRITER = f"pg_advisory_xact_lock_shared({FEED_WRITER[0]}, {FEED_WRITER[1]})"
# The lock rows of this database's feed writers, in pg_locks.
WRITER_LOCK = f"""
    locktype = 'advisory' AND classid = {FEED_WRITER[0]} AND objid = {FEED_WRITER[1]}
    AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
# Every transaction that could still write a message below this has ended (see above).
# An uncorrelated scalar subquery: run once, during the statement, after its snapshot.
HORIZON = sa.text(
    f"""(
    WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
    locks AS MATERIALIZED (
        SELECT locktype, classid, objid, objsubid, database, virtualtransaction,
               transactionid, mode, granted
        FROM pg_locks WHERE locktype IN ('advisory', 'transactionid')
    ),
    writers AS (SELECT virtualtransaction FROM locks WHERE {WRITER_LOCK}),
    bystanders AS (
        SELECT transactionid::text::bigint AS xid FROM locks AS l
        WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted
          AND NOT EXISTS (SELECT 1 FROM writers AS w
                          WHERE w.virtualtransaction = l.virtualtransaction)
    )
    SELECT LEAST(
        pg_snapshot_xmax(s)::text::bigint,
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s) AS x
         WHERE (x::text::bigint & 4294967295) NOT IN (SELECT xid FROM bystanders))
    ) FROM snap
)"""
)
REGISTER = sa.text(
    f"SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS late, {REGISTER_FEED_WRITER}"
)
# The writers now open, oldest first, and the sessions they wait for.
WRITERS = sa.text(
    f"""
    SELECT a.pid, a.datname AS database, a.state, a.wait_event_type, a.wait_event,
           EXTRACT(EPOCH FROM clock_timestamp() - a.xact_start)::float AS seconds,
           pg_blocking_pids(a.pid) AS blocked_by
    FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE {WRITER_LOCK} AND a.xact_start IS NOT NULL
    ORDER BY a.xact_start LIMIT 10
    """
)
SESSIONS = sa.text(
    """
    SELECT pid, datname AS database, state, backend_type,
           EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::float AS seconds
    FROM pg_stat_activity WHERE pid = ANY(:pids)
    """
)
