"""The worker's hot statements on PostgreSQL, each one round trip on the driver's
connection: reading the queue's heads, claiming under the endpoints' locks, recording a
batch of plain successes. sqlite/queue.py does the same on SQLite, row for row."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from postback.delivery.scheduler import ClaimPlan, QueueHead, SchedulerPolicy, plan_claim
from postback.store.backend import Claimed, Success
from postback.store.pg.raw import raw_connection

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

# Every endpoint with queued deliveries, found by skipping through the index on
# (endpoint_id, status, next_attempt_at) one endpoint at a time: the cost grows with the
# number of endpoints that have work, never with the length of any one's backlog. The first
# entry of each endpoint is its earliest pending delivery (pending sorts before sending), or
# if it has none, its earliest claim end. Then, only when nothing pending is due, its
# earliest claim end (past: a lapsed claim, due again) and, only for endpoints with
# something due, its live claims. The scheduler decides from these
# (postback.delivery.scheduler.plan_claim).
# Every read is ordered as that index is: with one endpoint holding a million due rows, a
# planner that estimates "half the table" per endpoint would otherwise walk a time-ordered
# index through that backlog to find another endpoint's first row. The live claims are
# counted the same way, and only up to the endpoint's cap (beyond it the count changes
# nothing). A sending status is written as a range here (sending is 3): `status = 3` lets the
# planner use the partial index ix_deliveries_worker (WHERE status = 3), every worker's
# claims for every endpoint, which it does whenever it believes that index small (fresh
# statistics or none): 33 of a 41 ms claim over 1,000 endpoints with 250 in flight
# (docs/performance.md).
#
# deliveries is partitioned by message id (store/pg/partitions.py), so each step of that
# walk would merge every partition's index, though queued rows live almost only in the
# newest windows (old ones hold finished rows, outside the partial index): 64 ms against
# 9.4 ms over 90 daily partitions (docs/performance.md). Every read of the queue therefore
# also says ``msg_id >= floor``, the smallest message id of any queued row (FLOOR: one
# descent into each partition's small partial index on msg_id, oldest first, until one
# holds a row), which PostgreSQL prunes the partitions below by as the statement runs.
# In the same statement, so in its snapshot: no queued row is below it (a resend of a
# 60-day-old message puts one in an old window, and the floor goes there).
FLOOR = """fl AS MATERIALIZED (
    SELECT min(msg_id) AS floor FROM deliveries WHERE next_attempt_at IS NOT NULL
)"""
_AT_FLOOR = "msg_id >= (SELECT floor FROM fl)"
HEADS = f"""
WITH RECURSIVE {FLOOR}, firsts(id, status, at) AS (
    (SELECT endpoint_id, status, next_attempt_at FROM deliveries
     WHERE next_attempt_at IS NOT NULL AND {_AT_FLOOR}
     ORDER BY endpoint_id, status, next_attempt_at LIMIT 1)
    UNION ALL
    SELECT x.* FROM firsts f CROSS JOIN LATERAL (
        SELECT d.endpoint_id, d.status, d.next_attempt_at FROM deliveries d
        WHERE d.next_attempt_at IS NOT NULL AND d.endpoint_id > f.id AND d.{_AT_FLOOR}
        ORDER BY d.endpoint_id, d.status, d.next_attempt_at LIMIT 1) x
), heads AS MATERIALIZED (
    SELECT f.id,
           CASE WHEN f.status = 1 THEN f.at END AS pending_at,
           CASE WHEN f.status = 3 THEN f.at
                WHEN f.at > $1 THEN
               (SELECT d.next_attempt_at FROM deliveries d
                WHERE d.endpoint_id = f.id AND d.status >= 3 AND d.status < 4
                  AND d.next_attempt_at IS NOT NULL AND d.{_AT_FLOOR}
                ORDER BY d.endpoint_id, d.status, d.next_attempt_at LIMIT 1)
           END AS claim_end
    FROM firsts f
)
SELECT e.id, e.app_id, h.pending_at, h.claim_end,
       e.max_in_flight, e.circuit_state, e.circuit_probe_at, e.paused_until,
       CASE WHEN h.pending_at <= $1 OR h.claim_end <= $1 THEN
           (SELECT count(*) FROM (
                SELECT 1 FROM deliveries d
                WHERE d.endpoint_id = e.id AND d.status >= 3 AND d.status < 4
                  AND d.next_attempt_at > $1 AND d.{_AT_FLOOR}
                ORDER BY d.endpoint_id, d.status, d.next_attempt_at
                LIMIT COALESCE(NULLIF(e.max_in_flight, 0), $2)) live)
       ELSE 0 END,
       e.ordered
FROM heads h JOIN endpoints e ON e.id = h.id
"""

# Under those locks, in a snapshot taken after them, each endpoint's room is settled
# again, once (materialized): none while it is paused by a Retry-After or its circuit is
# not closed, unless this claim is that circuit's probe and the probe is due; else its
# cap less its live claims (a claim that committed meanwhile is seen). The plan's read of
# these may be stale (see claim): this is the read that decides. Then its earliest due
# deliveries are leased and what sending them needs is read. The UPDATE repeats the due
# test: a row a recorder or a disable moved on since is left alone. It finds its rows
# through an array of ids, by primary key: joined to the lateral reads, whose sizes the
# planner cannot know, it may choose to hash the whole table instead; and the range of
# their message ids, which prunes the partitions outside it. A range, not the array of
# message ids: given that array the planner read the rows through the claim floor's
# partial index on msg_id instead of the key, a claim of 100 over a queue of a million
# 10.9 ms against 6.0 (docs/performance.md).
_ROOM = f"""
WITH {FLOOR}, pick AS (
    SELECT p.ep, p.k, p.cap, p.probe, p.o
    FROM jsonb_to_recordset($1::jsonb) AS p(ep text, k int, cap int, probe bool, o bool)
), room AS MATERIALIZED (
    SELECT p.ep, p.o, CASE
        WHEN e.paused_until > $2 THEN 0
        WHEN e.circuit_state <> 0 AND NOT (p.probe AND e.circuit_probe_at <= $2) THEN 0
        ELSE GREATEST(0, LEAST(p.k, p.cap - (
            SELECT count(*) FROM (
                SELECT 1 FROM deliveries d
                WHERE d.endpoint_id = p.ep AND d.status >= 3 AND d.status < 4
                  AND d.next_attempt_at > $2 AND d.{_AT_FLOOR}
                ORDER BY d.endpoint_id, d.status, d.next_attempt_at LIMIT p.cap) live)))
        END AS n
    FROM pick p JOIN endpoints e ON e.id = p.ep
"""

# An unordered endpoint's earliest due deliveries: pending ones and lapsed claims. An
# ordered endpoint's (o) due key heads: a range of ix_deliveries_heads, by due time. Only
# a key's head is marked (store/heads.py), so that read grows with the heads it takes: a
# key whose head is in flight or retrying sorts after now, one parked or paused is not in
# the index, and its later deliveries are not heads. Both in one statement: an ordered
# endpoint beside unordered ones costs the claim no round trip of its own.
_DUE = f"""), due AS (
    SELECT x.id, x.msg_id FROM room r CROSS JOIN LATERAL (
        (SELECT d.id, d.msg_id, d.next_attempt_at FROM deliveries d
         WHERE d.endpoint_id = r.ep AND d.status = 1 AND d.next_attempt_at <= $2
           AND d.{_AT_FLOOR}
         ORDER BY d.endpoint_id, d.status, d.next_attempt_at LIMIT r.n)
        UNION ALL
        (SELECT d.id, d.msg_id, d.next_attempt_at FROM deliveries d
         WHERE d.endpoint_id = r.ep AND d.status >= 3 AND d.status < 4
           AND d.next_attempt_at <= $2 AND d.{_AT_FLOOR}
         ORDER BY d.endpoint_id, d.status, d.next_attempt_at LIMIT r.n)
        ORDER BY next_attempt_at LIMIT r.n
    ) x
    WHERE NOT r.o
    UNION ALL
    SELECT x.id, x.msg_id FROM room r CROSS JOIN LATERAL (
        SELECT d.id, d.msg_id FROM deliveries d
        WHERE d.endpoint_id = r.ep AND d.head AND d.status IN (1, 3)
          AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $2 AND d.{_AT_FLOOR}
        ORDER BY d.endpoint_id, d.next_attempt_at LIMIT r.n
    ) x
    WHERE r.o
"""

# A half-open circuit whose probe this claim took is marked as probing until the probe's
# claim ends; if that passes with no result (its worker died), plan_claim sends another.
_LEASE_AND_READ = """), claimed AS (
    UPDATE deliveries d
    SET status = 3, next_attempt_at = $3, lease = $4, worker = $5, updated_at = $2
    WHERE d.id = ANY(ARRAY(SELECT id FROM due)) AND d.status IN (1, 3)
      AND d.msg_id >= (SELECT min(msg_id) FROM due) AND d.msg_id <= (SELECT max(msg_id) FROM due)
      AND d.next_attempt_at <= $2
    RETURNING d.id, d.msg_id, d.app_id, d.endpoint_id, d.attempt_count, d.trigger_type,
              d.rate_slot, d.payload
), probing AS (
    UPDATE endpoints SET circuit_state = 2, circuit_probe_at = $3
    WHERE id IN (SELECT endpoint_id FROM claimed)
      AND id IN (SELECT ep FROM pick WHERE probe) AND circuit_state <> 0
)
SELECT c.id, c.msg_id, c.app_id, c.endpoint_id, c.attempt_count, c.trigger_type, e.url,
       e.secret, NULLIF(e.previous_secrets, 'null'), NULLIF(e.headers, '{}'),
       e.throttle_rate, c.rate_slot, COALESCE(c.payload, m.payload) AS payload,
       a.throttle_rate, e.tls, e.oauth, m.trace_context
FROM claimed c
JOIN endpoints e ON e.id = c.endpoint_id
JOIN messages m ON m.id = c.msg_id
JOIN applications a ON a.id = c.app_id
ORDER BY c.id
"""
CLAIM = _ROOM + _DUE + _LEASE_AND_READ

# The lease is one round trip: a function that takes the endpoints' locks and then, in a
# statement of its own, runs CLAIM over the endpoints it got. Each endpoint is locked with a
# transaction-scoped advisory try-lock keyed by a 64-bit hash of its id (the one-key form:
# it cannot meet the two-key locks of the events feed); one another worker is claiming from
# right now is skipped (it has that endpoint's room in hand). Only claims take these locks,
# so only claims wait on one another, and a try-lock never waits: no lock order to keep.
# Row locks on the endpoints did the same at seven times the cost (a tuple lock is a write:
# 16 µs an endpoint against 2 µs, docs/performance.md), and made a claim skip an endpoint
# whose row a recorder had locked.
# CLAIM must not share the locks' statement: a statement's snapshot is taken when it
# starts, so it could miss the leases of a claim that committed (and let go of the lock)
# while it waited for it. A VOLATILE function takes a new snapshot for each statement in
# it; called outside a transaction block, the locks end with its implicit transaction.
# Before, the lease was four round trips (BEGIN, the locks, CLAIM, COMMIT), each a wait for
# a turn of a worker's event loop busy sending: in a fan-out to 1,000 endpoints that made
# each claim of 250 take 50 ms (docs/performance.md).
LEASE_FUNCTION = """
CREATE OR REPLACE FUNCTION {name}(jsonb, timestamptz, timestamptz, varchar, varchar)
RETURNS TABLE ({columns}) LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    mine jsonb;
BEGIN
    SELECT COALESCE(jsonb_agg(p), '[]'::jsonb) INTO mine FROM jsonb_array_elements($1) AS p
    WHERE pg_try_advisory_xact_lock(hashtextextended(p->>'ep', 7160));
    IF jsonb_array_length(mine) > 0 THEN
        RETURN QUERY {claim};
    END IF;
END
$fn$
"""
_FUNCTION_LOCK = 0x6C656173  # one process at a time creates it


class SpareHeads:
    """The heads a claim read but did not take from because its batch was full, kept for
    the claims that follow at once: a worker with more free senders than one claim takes
    (delivery/worker.py's CLAIM_MOST) claims several times in a row, and without this each
    of those claims walks every endpoint with queued work again (10 µs an endpoint). Kept
    for ``SPARE_FOR`` seconds at most, and only while they yield: a claim that cannot fill
    its batch from them walks the queue in the same call, so a claim comes back short only
    when the queue itself is short, and work queued meanwhile for other endpoints waits for
    the spare at most that long. Staleness is
    harmless: the lease settles every endpoint's room, circuit and pause again (_ROOM)."""

    SPARE_FOR = 0.1

    def __init__(self) -> None:
        self._heads: list[QueueHead] = []
        self._read_at = 0.0

    def take(self) -> tuple[list[QueueHead], float] | None:
        """The spare heads and when they were read, if fresh; they are handed out once."""
        heads, self._heads = self._heads, []
        if heads and time.monotonic() - self._read_at < self.SPARE_FOR:
            return heads, self._read_at
        return None

    def keep(self, heads: list[QueueHead], plan: ClaimPlan, limit: int, read_at: float) -> None:
        """What ``plan`` left of ``heads``, if it filled its batch (else nothing due is left)."""
        if sum(plan.take.values()) >= limit:
            self._heads = [h for h in heads if h.endpoint_id not in plan.take]
            self._read_at = read_at


async def claim(
    engine: AsyncEngine,
    now: datetime,
    limit: int,
    until: datetime,
    lease: str,
    worker: str,
    policy: SchedulerPolicy,
    spare: SpareHeads,
    function: LeaseFunction,
) -> tuple[list[Claimed], datetime | None, frozenset[str]]:
    """Backend.claim on PostgreSQL: the heads read outside a transaction (or what the last
    claim left of its read, ``spare``), then the plan leased by the lease function in one
    round trip, where every endpoint's room is settled again under its lock."""
    claimed: list[Claimed] = []
    watch: frozenset[str] = frozenset()
    async with raw_connection(engine) as (raw, _):
        kept = spare.take()
        if kept is not None:
            heads, read_at = kept
            plan = plan_claim(heads, now, limit, policy)
            if plan.take:
                claimed = await _lease(raw, heads, plan, now, until, lease, worker, function)
            if len(claimed) >= limit:
                spare.keep(heads, plan, limit, read_at)
                return claimed, plan.next_wake, plan.watch
            limit -= len(claimed)
            watch = plan.watch
        read_at = time.monotonic()
        heads = [QueueHead(*r) for r in await raw.fetch(HEADS, now, policy.max_in_flight)]
        plan = plan_claim(heads, now, limit, policy)
        if plan.take:
            more = await _lease(raw, heads, plan, now, until, lease, worker, function)
            # In delivery id order across both leases, as each returns its own.
            claimed = sorted(claimed + more, key=lambda c: c.id) if claimed else more
        spare.keep(heads, plan, limit, read_at)
    return claimed, plan.next_wake, watch | plan.watch


class LeaseFunction:
    """The lease function (LEASE_FUNCTION) of this code's CLAIM, made on first use. Its name
    carries a hash of its text and of CLAIM's column types (read from the server), so
    processes of two versions side by side, as in a rolling upgrade, each call their own,
    and one made by a process of the same version is used as it is. Workers make it as
    they make partitions: they need the same right to create in the schema."""

    def __init__(self) -> None:
        self.call: str | None = None

    async def ensure(self, raw: Any) -> str:
        if self.call is None:
            statement = await raw.prepare(CLAIM)
            columns = ", ".join(
                f"c{n} {a.type.schema}.{a.type.name}"
                for n, a in enumerate(statement.get_attributes())
            )
            text = LEASE_FUNCTION.replace("{columns}", columns).replace(
                "{claim}", CLAIM.replace("$1::jsonb", "mine")
            )
            name = "postback_lease_" + hashlib.sha256(text.encode()).hexdigest()[:12]
            async with raw.transaction():
                await raw.execute(f"SELECT pg_advisory_xact_lock({_FUNCTION_LOCK})")
                if await raw.fetchval("SELECT to_regproc($1)", name) is None:
                    await raw.execute(text.replace("{name}", name))
            self.call = f"SELECT * FROM {name}($1, $2, $3, $4, $5)"
        return self.call

    def forget(self) -> None:
        """After the function was not found (a restore, a schema dropped and remade)."""
        self.call = None


async def _lease(
    raw: Any,
    heads: list[QueueHead],
    plan: ClaimPlan,
    now: datetime,
    until: datetime,
    lease: str,
    worker: str,
    function: LeaseFunction,
) -> list[Claimed]:
    """Lease what ``plan`` says, under the endpoints' locks, in one round trip: by due
    time, or key head by key head for the ordered endpoints."""
    ordered = {h.endpoint_id for h in heads if h.ordered}
    pick = orjson.dumps(
        [
            {
                "ep": ep,
                "k": k,
                "cap": plan.caps[ep],
                "probe": ep in plan.probes,
                "o": ep in ordered,
            }
            for ep, k in sorted(plan.take.items())
        ]
    ).decode()
    call = await function.ensure(raw)
    try:
        rows = await raw.fetch(call, pick, now, until, lease, worker)
    except asyncpg.UndefinedFunctionError:
        function.forget()
        rows = await raw.fetch(await function.ensure(raw), pick, now, until, lease, worker)
    return [Claimed(*r) for r in sorted(rows, key=lambda r: r[0])]


# Plain successes, recorded in one statement. Attempts are kept only for deliveries that
# still exist (an endpoint or message deleted in flight takes its delivery with it); a
# delivery moves on only under the lease that claimed it; an endpoint that was failing is
# failing no more, and its breaker's count of failures starts again. Endpoint rows are
# locked NO KEY UPDATE, as in _track_health. What it returns: the endpoints among the
# batch whose circuit is not closed, which this success closes (record_attempts does that
# next, with the operational event), and, unless $3, the deliveries it left alone because
# they are an ordered key's (a head: its key's next head is marked in a later statement of
# the same transaction, store/heads.py, so those go through record_heads).
#
# The batch arrives as one JSON array of rows: the driver would encode thirteen arrays
# element by element, orjson writes the same rows at a fraction of that client CPU
# (docs/performance.md).
RECORD_SUCCESSES = """
WITH x AS (
    SELECT r->>0 AS id, r->>1 AS delivery_id, r->>2 AS lease, r->>3 AS msg_id,
           r->>4 AS endpoint_id, r->>5 AS app_id, r->>6 AS url, (r->>7)::int AS code,
           r->>8 AS response, (r->>9)::int AS duration, (r->>10)::smallint AS trig,
           (r->>11)::timestamptz AS at, (r->>12)::int AS count
    FROM jsonb_array_elements($1::jsonb) AS r
), later AS MATERIALIZED (
    SELECT d.id FROM deliveries d
    WHERE NOT $3 AND d.id IN (SELECT delivery_id FROM x) AND d.ordering_key IS NOT NULL
      AND d.msg_id >= (SELECT min(msg_id) FROM x) AND d.msg_id <= (SELECT max(msg_id) FROM x)
), kept AS (
    INSERT INTO attempts (id, msg_id, endpoint_id, app_id, url, status, response_status_code,
                          response, error, response_duration_ms, trigger_type, created_at)
    SELECT x.id, x.msg_id, x.endpoint_id, x.app_id, x.url, 0, x.code, x.response, NULL,
           x.duration, x.trig, x.at
    FROM x WHERE EXISTS (SELECT 1 FROM deliveries d
                         WHERE d.id = x.delivery_id AND d.msg_id = x.msg_id)
      AND x.delivery_id NOT IN (SELECT id FROM later)
    RETURNING endpoint_id
), moved AS (
    UPDATE deliveries d
    SET status = 0, next_attempt_at = NULL, attempt_count = x.count, lease = NULL,
        trigger_type = 0, rate_slot = false, updated_at = $2
    FROM x WHERE d.id = x.delivery_id AND d.msg_id = x.msg_id AND d.lease = x.lease
      AND d.msg_id >= (SELECT min(msg_id) FROM x) AND d.msg_id <= (SELECT max(msg_id) FROM x)
      AND x.delivery_id NOT IN (SELECT id FROM later)
), failing AS (
    SELECT e.id FROM endpoints e
    WHERE e.id IN (SELECT endpoint_id FROM kept)
      AND (e.failing_since IS NOT NULL OR e.circuit_failures > 0)
    ORDER BY e.id FOR NO KEY UPDATE
), cleared AS (
    UPDATE endpoints SET failing_since = NULL, circuit_failures = 0
    WHERE id IN (SELECT id FROM failing)
)
SELECT e.id, NULL AS later FROM endpoints e
WHERE e.id IN (SELECT endpoint_id FROM x WHERE delivery_id NOT IN (SELECT id FROM later))
  AND e.circuit_state <> 0
UNION ALL
SELECT NULL, id FROM later
"""

# The keys of deliveries that finished earlier in this transaction: each key's first
# unfinished delivery is its head (store/heads.py's PROMOTE).
# Each delivery named by its id, and the range of their message ids ($2), which prunes
# deliveries' partitions (a range: see CLAIM's UPDATE).
PROMOTE = """
WITH next AS MATERIALIZED (
    SELECT n.id, n.msg_id FROM deliveries f CROSS JOIN LATERAL (
        SELECT n.id, n.msg_id FROM deliveries n
        WHERE n.endpoint_id = f.endpoint_id AND n.ordering_key = f.ordering_key
          AND n.ordering_key IS NOT NULL AND n.status IN (1, 3)
        ORDER BY n.endpoint_id, n.ordering_key, n.seq, n.id LIMIT 1) n
    WHERE f.id = ANY($1::text[]) AND f.ordering_key IS NOT NULL
      AND f.msg_id >= (SELECT min(m) FROM unnest($2::text[]) m)
      AND f.msg_id <= (SELECT max(m) FROM unnest($2::text[]) m)
)
UPDATE deliveries SET head = true
WHERE id = ANY(ARRAY(SELECT id FROM next))
  AND msg_id >= (SELECT min(msg_id) FROM next) AND msg_id <= (SELECT max(msg_id) FROM next)
  AND NOT head
"""


async def record_successes(
    engine: AsyncEngine, done: Sequence[Success], now: datetime
) -> list[str]:
    """Backend.record_successes on PostgreSQL: one statement for the deliveries of
    unordered endpoints, a transaction of two for ordered keys' heads, each retried on a
    deadlock."""
    rows = await _retried(engine, done, now, heads=False)
    not_closed = [r[0] for r in rows if r[0] is not None]
    later = {r[1] for r in rows if r[1] is not None}
    if later:
        heads = [d for d in done if d.delivery_id in later]
        not_closed += [r[0] for r in await _retried(engine, heads, now, heads=True)]
    return sorted(set(not_closed))


async def _retried(
    engine: AsyncEngine, done: Sequence[Success], now: datetime, *, heads: bool
) -> list[Any]:
    # Each Success one JSON array, in RECORD_SUCCESSES's order (orjson takes plain tuples).
    batch = orjson.dumps([tuple(d) for d in done]).decode()
    for tries_left in (2, 1, 0):
        try:
            async with raw_connection(engine) as (raw, _):
                if not heads:
                    return list(await raw.fetch(RECORD_SUCCESSES, batch, now, False))
                async with raw.transaction():
                    rows = await raw.fetch(RECORD_SUCCESSES, batch, now, True)
                    await raw.execute(
                        PROMOTE, [d.delivery_id for d in done], [d.msg_id for d in done]
                    )
                return list(rows)
        except asyncpg.exceptions.DeadlockDetectedError:
            if not tries_left:
                raise
    raise AssertionError("unreachable")
