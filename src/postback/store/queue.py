"""The delivery queue and attempt history: claims, results, resends, listings."""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from postback import ids
from postback.delivery.scheduler import DEFAULT_POLICY, ClaimBatch, SchedulerPolicy
from postback.domain import (
    PARK_AHEAD,
    AttemptResult,
    ClaimedDelivery,
    MessageStatus,
    RetrySchedule,
    TriggerType,
    queue_times,
)
from postback.signing import SigningKey, decode_signing_key
from postback.store import heads
from postback.store import schema as t
from postback.store.backend import Success
from postback.store.core import StoreCore
from postback.store.credentials import open_oauth, open_tls
from postback.store.operational import plain_successes

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]

# The worker's statements, built once: SQLAlchemy finds their compiled form by a memoized
# cache key instead of walking a freshly built statement for every batch.
_d = t.deliveries.c
# Each names the deliveries' message ids too: on PostgreSQL deliveries is partitioned by
# msg_id, and a lookup by id alone probes every partition's key (store/pg/partitions.py).
_PRESENT = sa.select(_d.id, _d.ordering_key).where(
    _d.id.in_(sa.bindparam("b_ids", expanding=True)),
    _d.msg_id.in_(sa.bindparam("b_msgs", expanding=True)),
)
_MOVE_ON = (
    t.deliveries.update()
    .where(
        _d.id == sa.bindparam("b_id"),
        _d.msg_id == sa.bindparam("b_msg"),
        _d.lease == sa.bindparam("b_lease"),
    )
    .values(
        lease=None,
        trigger_type=TriggerType.SCHEDULED,
        rate_slot=False,
        updated_at=sa.bindparam("b_now"),
    )
)


class Outcome(NamedTuple):
    """Where an attempt leaves its delivery."""

    status: MessageStatus
    next_attempt_at: datetime | None
    attempt_count: int  # scheduled attempts made so far


class QueueMixin(StoreCore):
    if TYPE_CHECKING:  # other parts' methods, declared for the type checker only

        async def _reserve_rate_slots(
            self, conn: AsyncConnection, rows: Any, now: datetime, lease: str
        ) -> set[str]: ...

        async def _track_health(
            self,
            conn: AsyncConnection,
            results: Any,
            outcomes: Any,
            disable_after: float | None,
            policy: SchedulerPolicy,
        ) -> None: ...

        async def _close_circuits(self, ep_ids: Sequence[str]) -> None: ...

    # ---- the worker's side -----------------------------------------------------------

    async def claim_due_deliveries(
        self,
        limit: int,
        lease_seconds: float,
        *,
        policy: SchedulerPolicy | None = None,
        worker: str = "",
    ) -> list[ClaimedDelivery]:
        """Take up to ``limit`` due deliveries for ``lease_seconds``: they become due again
        if the claimer dies. See ``claim``."""
        batch = await self.claim(limit, lease_seconds, policy=policy, worker=worker)
        return batch.claims

    async def claim(
        self,
        limit: int,
        lease_seconds: float,
        *,
        policy: SchedulerPolicy | None = None,
        worker: str = "",
    ) -> ClaimBatch:
        """Lease up to ``limit`` due deliveries, shared fairly between applications and
        endpoints, each endpoint within its cap (over every worker process), none from an
        endpoint whose circuit is open or that a Retry-After paused (postback.delivery.
        scheduler). Also: when the next endpoint not claimable now becomes claimable."""
        policy = policy or DEFAULT_POLICY
        now = self.clock()
        lease = _secrets.token_hex(8)
        until = now + timedelta(seconds=lease_seconds)
        details, next_wake, watch = await self.backend.claim(
            now, limit, until, lease, worker, policy
        )
        postponed: set[str] = set()
        if any((r.throttle_rate or r.app_throttle_rate) and not r.rate_slot for r in details):
            async with self.engine.begin() as conn:
                postponed = await self._reserve_rate_slots(conn, details, now, lease)
        claims = [
            ClaimedDelivery(
                delivery_id=r.id,
                lease=lease,
                msg_id=r.msg_id,
                app_id=r.app_id,
                endpoint_id=r.endpoint_id,
                url=r.url,
                secrets=self._signing_keys(r, now),
                headers=r.headers or {},
                payload=r.payload or b"{}",
                attempt_count=r.attempt_count,
                trigger=TriggerType(r.trigger_type),
                tls=self._opened(r.tls, r.endpoint_id, open_tls) if r.tls else None,
                oauth=self._opened(r.oauth, r.endpoint_id, open_oauth) if r.oauth else None,
                trace_context=r.trace_context,
            )
            for r in details
            if r.id not in postponed
        ]
        if postponed:
            # Rate limits moved these on to their slots, which the plan did not know of:
            # their endpoints' recorded attempts bring the next claim forward, as before.
            watch |= {r.endpoint_id for r in details if r.throttle_rate or r.app_throttle_rate}
        return ClaimBatch(claims, next_wake, watch)

    def _signing_keys(self, row: Any, now: datetime) -> tuple[SigningKey, ...]:
        """The current secret, then rotated-out ones still inside their grace period."""
        keys = [self._signing_key(row.secret, row.endpoint_id)]
        for previous in row.previous_secrets or ():
            if datetime.fromisoformat(previous["until"]) > now:
                keys.append(self._signing_key(previous["secret"], row.endpoint_id))
        return tuple(keys)

    def _signing_key(self, sealed: str, endpoint_id: str) -> SigningKey:
        """A sealed secret's key bytes, opened once per process (a claim per delivery would
        otherwise decrypt its endpoint's secret each time). A new secret is sealed anew,
        so a rotation is a new entry; the cache is emptied when it grows large."""
        cache = self._signing_key_cache
        key = cache.get((endpoint_id, sealed))
        if key is None:
            if len(cache) >= 10_000:
                cache.clear()
            secret = self._unseal(sealed, endpoint_id)
            key = cache[endpoint_id, sealed] = decode_signing_key(secret)
        return key

    def _opened(self, sealed: str, endpoint_id: str, parse: Callable[[str], Any]) -> Any:
        """Sealed credentials opened once per process, as signing keys are."""
        cache = self._signing_key_cache
        found = cache.get((endpoint_id, sealed))
        if found is None:
            if len(cache) >= 10_000:
                cache.clear()
            found = cache[endpoint_id, sealed] = parse(self._unseal(sealed, endpoint_id))
        return found

    async def record_attempts(
        self,
        results: Sequence[AttemptResult],
        schedule: RetrySchedule,
        *,
        disable_after: float | None = None,
        policy: SchedulerPolicy | None = None,
    ) -> None:
        """Store a batch of attempts and move each delivery on, in one transaction, with
        endpoint health: operational events, the circuit breaker and Retry-After pauses
        (``policy``), auto-disable after ``disable_after`` s."""
        if not results:
            return
        policy = policy or DEFAULT_POLICY
        now = self.clock()
        outcomes = [_outcome(res, schedule, now) for res in results]
        if plain_successes(results, outcomes):
            # The usual batch: the backend records it in one statement.
            done = [
                Success(
                    ids.new_id(ids.ATTEMPT),
                    dl.delivery_id,
                    dl.lease,
                    dl.msg_id,
                    dl.endpoint_id,
                    dl.app_id,
                    dl.url,
                    res.status_code,
                    res.response,
                    res.duration_ms,
                    int(dl.trigger),
                    res.at,
                    count,
                )
                for res, (_, _, count) in zip(results, outcomes, strict=True)
                for dl in (res.delivery,)
            ]
            not_closed = await self.backend.record_successes(done, now)
            if not_closed:
                await self._close_circuits(not_closed)
            return
        updates, rows = [], []
        for res, (status, next_at, count) in zip(results, outcomes, strict=True):
            dl = res.delivery
            queued = queue_times(next_at, now)  # a late retry is parked
            updates.append(
                {
                    "b_id": dl.delivery_id,
                    "b_msg": dl.msg_id,
                    "b_lease": dl.lease,
                    "status": status,
                    "next_attempt_at": queued[0],
                    "wake_at": queued[1],
                    "attempt_count": count,
                    "b_now": now,
                }
            )
            rows.append(
                {
                    "id": ids.new_id(ids.ATTEMPT),
                    "msg_id": dl.msg_id,
                    "endpoint_id": dl.endpoint_id,
                    "app_id": dl.app_id,
                    "url": dl.url,
                    "status": MessageStatus.SUCCESS if res.ok else MessageStatus.FAIL,
                    "response_status_code": res.status_code,
                    "response": res.response,
                    "error": res.error,
                    "response_duration_ms": res.duration_ms,
                    "trigger_type": dl.trigger,
                    "created_at": res.at,
                }
            )
        for tries_left in (2, 1, 0):
            try:
                async with self.engine.begin() as conn:
                    # An endpoint or message deleted while its attempt was in flight takes
                    # the delivery with it: drop that attempt instead of failing the batch.
                    found = (
                        await conn.execute(
                            _PRESENT,
                            {
                                "b_ids": [r.delivery.delivery_id for r in results],
                                "b_msgs": sorted({r.delivery.msg_id for r in results}),
                            },
                        )
                    ).all()
                    keep = {r.id for r in found}
                    live = [i for i, r in enumerate(results) if r.delivery.delivery_id in keep]
                    if live:
                        await conn.execute(t.attempts.insert(), [rows[i] for i in live])
                    await conn.execute(_MOVE_ON, updates)
                    # An ordered key's head that finished: its next delivery is the head.
                    await heads.promote(conn, [r.id for r in found if r.ordering_key is not None])
                    await self._track_health(
                        conn,
                        [results[i] for i in live],
                        [outcomes[i] for i in live],
                        disable_after,
                        policy,
                    )
                return
            except DBAPIError:
                if not tries_left:
                    raise

    async def release_claims(self, claims: Sequence[ClaimedDelivery]) -> None:
        """Hand unfinished claims back (graceful shutdown): due again at once."""
        if not claims:
            return
        d = t.deliveries.c
        stmt = (
            t.deliveries.update()
            .where(
                d.id == sa.bindparam("b_id"),
                d.msg_id == sa.bindparam("b_msg"),
                d.lease == sa.bindparam("b_lease"),
            )
            .values(
                status=MessageStatus.PENDING, next_attempt_at=self.clock(), lease=None, worker=None
            )
        )
        given = [{"b_id": c.delivery_id, "b_msg": c.msg_id, "b_lease": c.lease} for c in claims]
        async with self.engine.begin() as conn:
            await conn.execute(stmt, given)
            await self._announce_work(conn)
        self._notify_work()

    async def wake_parked(self, limit: int = 5000) -> int:
        """Move parked deliveries due within PARK_AHEAD back into the queue (a batch of up
        to ``limit``, earliest first), so claims see them before they are due; returns how
        many. Any number of workers may run it at once: a row moves once."""
        now = self.clock()
        d, e = t.deliveries.c, t.endpoints.c
        soon = (
            sa.select(d.id, d.msg_id)
            .where(
                d.wake_at <= now + PARK_AHEAD,
                d.status == MessageStatus.PENDING,
                d.endpoint_id.in_(sa.select(e.id).where(e.disabled.is_(False))),
            )
            .order_by(d.wake_at)
            .limit(limit)
        )
        async with self.engine.begin() as conn:
            moved = await conn.execute(
                t.deliveries.update()
                # By (id, msg_id): the message id finds the partition (PostgreSQL).
                .where(sa.tuple_(d.id, d.msg_id).in_(soon), d.wake_at.is_not(None))
                .values(next_attempt_at=d.wake_at, wake_at=None)
            )
            if moved.rowcount:
                await self._announce_work(conn)
        if moved.rowcount:
            self._notify_work()
        return int(moved.rowcount or 0)

    async def queue_health(self, overdue_after: float) -> dict[str, Any]:
        """Counts an operator needs to judge the queue: what is due, what is late, what is
        held back on purpose (an open circuit, a receiver's Retry-After: one customer's
        outage, not the queue's), and claims whose lease ran out without another worker
        taking them over."""
        now = self.clock()
        late = now - timedelta(seconds=overdue_after)
        d, e = t.deliveries.c, t.endpoints.c
        pending, sending = d.status == MessageStatus.PENDING, d.status == MessageStatus.SENDING
        due = d.next_attempt_at <= now
        # (A NULL pause must read as false, not unknown: NOT unknown would drop the row.)
        held = (e.circuit_state != 0) | (e.paused_until.is_not(None) & (e.paused_until > now))

        def count(cond: Any) -> Any:
            return sa.func.count().filter(cond)

        stmt = (
            sa.select(
                count(sa.and_(pending, due)).label("due"),
                count(sa.and_(pending, d.next_attempt_at < late, ~held)).label("overdue"),
                count(sa.and_(pending, due, held)).label("held"),
                count(sa.and_(pending, (d.next_attempt_at > now) | d.wake_at.is_not(None))).label(
                    "scheduled"
                ),
                count(sa.and_(pending, d.next_attempt_at.is_(None), d.wake_at.is_(None))).label(
                    "paused"
                ),
                count(sending).label("sending"),
                count(sa.and_(sending, d.next_attempt_at < late)).label("stuck"),
                sa.func.min(d.next_attempt_at)
                .filter(sa.and_(pending, due, ~held))
                .label("oldest_due"),
            )
            .select_from(t.deliveries.join(t.endpoints, e.id == d.endpoint_id))
            .where(d.next_attempt_at.is_not(None) | pending)
        )
        circuits = sa.select(sa.func.count()).where(e.circuit_state != 0)
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).one()
            open_circuits = await conn.scalar(circuits)
            workers = await conn.scalar(sa.select(sa.func.count()).select_from(t.workers))
        health = dict(row._mapping)
        oldest = health.pop("oldest_due")
        health["oldest_due_seconds"] = (now - oldest).total_seconds() if oldest else 0.0
        health["open_circuits"] = open_circuits
        health["workers"] = workers
        health["healthy"] = health["overdue"] == 0 and health["stuck"] == 0
        return health


def _outcome(res: AttemptResult, schedule: RetrySchedule, now: datetime) -> Outcome:
    """The delivery's status, next due time and scheduled-attempt count after ``res``."""
    dl = res.delivery
    if dl.trigger is TriggerType.MANUAL:
        # A manual resend is one extra try; it does not restart the retry schedule.
        status = MessageStatus.SUCCESS if res.ok else MessageStatus.FAIL
        return Outcome(status, None, dl.attempt_count)
    count = dl.attempt_count + 1
    if res.ok:
        return Outcome(MessageStatus.SUCCESS, None, count)
    next_at = schedule.next_attempt_at(count, now)
    return Outcome(MessageStatus.PENDING if next_at else MessageStatus.FAIL, next_at, count)
