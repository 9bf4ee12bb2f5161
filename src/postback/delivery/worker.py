"""The worker: claim due deliveries → send them → record the attempts, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from datetime import datetime

from postback import metrics, tracing
from postback.config import Settings
from postback.delivery.scheduler import SchedulerPolicy
from postback.delivery.sender import Sender
from postback.delivery.slots import Slots
from postback.delivery.ssrf import policy_for
from postback.domain import PARK_AHEAD, AttemptResult, ClaimedDelivery, RetrySchedule, utcnow
from postback.store.store import Store

log = logging.getLogger("postback.worker")

MAX_BACKOFF = 10.0
RECORD_COALESCE = 0.002  # seconds the recorder waits for a fuller batch
HOUSEKEEPING_EVERY = 60.0
# The most one claim takes (POSTBACK_WORKER_BATCH_SIZE if larger): on SQLite a claim holds
# the write lock, about 15 ms for 1,000 deliveries over 1,000 endpoints.
CLAIM_MOST = 1000
# Parked deliveries are moved back PARK_AHEAD before they are due; checking four times in
# that span leaves every one of them at least 45 s in the queue before its time.
WAKE_PARKED_EVERY = PARK_AHEAD.total_seconds() / 4


class Worker:
    """One process's delivery loop. ``run()`` until ``stop()``; then in-flight attempts get
    ``shutdown_grace`` seconds to finish, and the rest are handed back to the queue."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        sender: Sender | None = None,
        shutdown_grace: float | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.schedule = RetrySchedule(settings.retry_schedule, settings.retry_jitter)
        self.policy = SchedulerPolicy(
            max_in_flight=settings.endpoint_max_in_flight,
            failure_threshold=settings.circuit_failure_threshold,
            cooldown=settings.circuit_cooldown,
            max_cooldown=settings.circuit_max_cooldown,
        )
        self.sender = sender or Sender(
            timeout=settings.request_timeout,
            response_max_bytes=settings.response_max_bytes,
            user_agent=settings.user_agent,
            max_connections=settings.worker_concurrency,
            retry_after_max=settings.retry_after_max,
            require_https=settings.require_https,
            policy=policy_for(settings),
            egress_proxy=settings.egress_proxy,
            egress_no_proxy=settings.egress_no_proxy,
        )
        # Claims carry this id; its heartbeats keep them, and its silence hands them on.
        self.worker_id = secrets.token_hex(6)
        self._next_wake: datetime | None = None
        self._watch: frozenset[str] = frozenset()  # the last claim's (ClaimBatch.watch)
        # Claims held at once: one per sender, plus a batch claimed ahead, so a sender that
        # finishes finds its next delivery waiting instead of waiting for a claim's round
        # trip. A claim is kept by the worker's heartbeats (store/liveness.py), however long
        # its attempt or its wait for a sender takes; the lease only ends the claims of a
        # worker that can no longer beat. It spans a few beats, so one late beat loses none.
        senders = settings.worker_concurrency
        self.slots = Slots(senders + min(senders, settings.worker_batch_size))
        self.lease_seconds = max(settings.lease_seconds, 4 * settings.worker_heartbeat)
        self.shutdown_grace = (
            settings.request_timeout + 1 if shutdown_grace is None else shutdown_grace
        )
        self._stopping = asyncio.Event()
        # Claims wait here for one of the worker_concurrency sender coroutines, which live
        # as long as the worker (a task per delivery cost more than the delivery's HTTP
        # bookkeeping). ``_sending`` maps each sender to the claim it is sending.
        self._claims: asyncio.Queue[ClaimedDelivery | None] = asyncio.Queue()
        self._senders: list[asyncio.Task[None]] = []
        self._sending: dict[int, ClaimedDelivery] = {}
        self._results: list[AttemptResult] = []
        self._results_ready = asyncio.Event()
        self.delivered = 0  # attempts recorded by this worker, for tests and metrics
        # Spans per attempt when tracing is on (postback.tracing); None costs nothing.
        self.tracer = tracing.attempt_tracer()
        metrics.track_worker(self)

    def stop(self) -> None:
        self._stopping.set()
        self.slots.wake()
        self.store.work_queued.set()

    async def run(self) -> None:
        await self.sender.start()
        await self._ensure_partitions()
        log.info("worker started (concurrency %d)", self.settings.worker_concurrency)
        self._senders = [
            asyncio.create_task(self._send_loop(n), name=f"postback-sender-{n}")
            for n in range(self.settings.worker_concurrency)
        ]
        recorder = asyncio.create_task(self._record_loop(), name="postback-recorder")
        listener = asyncio.create_task(self.store.listen_for_work(), name="postback-listen")
        housekeeper = asyncio.create_task(self._housekeeping(), name="postback-housekeeping")
        heart = asyncio.create_task(self._heartbeat_loop(), name="postback-heartbeat")
        waker = asyncio.create_task(self._wake_parked_loop(), name="postback-wake-parked")
        try:
            await self._claim_loop()
        finally:
            for task in (listener, housekeeper, heart, waker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._drain()
            self._results_ready.set()
            await recorder
            await self.sender.close()
            with contextlib.suppress(Exception):
                await self.store.forget_worker(self.worker_id)

    # ---- claiming --------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            free = self.slots.free
            if free <= 0:
                await self.slots.wait_free()
                continue
            # A claim reads every endpoint with queued work once (postback.delivery.
            # scheduler): take what the free senders can start, up to CLAIM_MOST, in one
            # claim rather than several. A quarter of the senders at a time made a fan-out
            # to 1,000 endpoints four walks of them (docs/performance.md).
            want = min(free, max(self.settings.worker_batch_size, CLAIM_MOST))
            # Cleared before the claim: work queued while it runs wakes the next wait.
            self.store.work_queued.clear()
            started = time.time_ns() if self.tracer is not None else 0
            try:
                batch = await self.store.claim(
                    want, self.lease_seconds, policy=self.policy, worker=self.worker_id
                )
                claimed, self._next_wake, self._watch = batch.claims, batch.next_wake, batch.watch
                backoff = 0.0
            except Exception as exc:  # the database is down or restarting: keep trying
                backoff = min(MAX_BACKOFF, backoff * 2 or 0.2)
                log.warning("claiming deliveries failed (%s); retrying in %.1fs", exc, backoff)
                await self._sleep(backoff)
                continue
            self.slots.take(len(claimed))
            if self.tracer is not None and claimed:
                self.tracer.claimed(claimed, started)
            for claim in claimed:
                self._claims.put_nowait(claim)
            if len(claimed) < want:
                await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        """Until new work is announced, a recorded attempt frees an endpoint's room, the
        next scheduled delivery (or probe, or end of a pause) is due, or the poll
        interval passes (the backstop for wakeups lost across processes)."""
        timeout = self.settings.poll_interval
        if self._next_wake is not None:
            timeout = min(timeout, max(0.0, (self._next_wake - utcnow()).total_seconds()))
        if timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.store.work_queued.wait(), timeout)

    async def _ensure_partitions(self) -> None:
        """PostgreSQL: the partitions of messages, deliveries and attempts for the next
        windows, before a row needs one (every worker and API process does it; the first
        to come makes them)."""
        try:
            made = await self.store.ensure_partitions(self.settings.partition_width)
        except Exception as exc:  # housekeeping tries again within a minute
            log.warning("making time partitions failed (%s); will try again", exc)
            return
        if made:
            log.info("made %d time partitions ahead", made)

    async def _housekeeping(self) -> None:
        """Retention: drop expired payloads and idempotency keys, a batch a minute, and the
        records past POSTBACK_RETENTION_PERIOD (one worker process at a time, in short
        batches: store/retention.py); warn of client certificates that expire within 14
        days and of ordering keys blocked too long (operational webhooks; the latter one
        worker at a time too: store/blocked.py). The first records pass waits one round: a worker
        that has just started is taking its first claims, and on SQLite the pass's bookkeeping
        takes the write lock those claims need."""
        started = True
        # Keys blocked past POSTBACK_ORDERING_BLOCKED_ALERT are looked for every round, and
        # a round comes at least every half of it, so an alert is at most that late.
        alert = self.settings.ordering_blocked_alert
        every = min(HOUSEKEEPING_EVERY, max(alert / 2, 0.5)) if alert else HOUSEKEEPING_EVERY
        while True:
            try:
                if not started:  # run() made them just before
                    await self._ensure_partitions()
                await self.store.expunge_expired_payloads()
                await self.store.purge_idempotency_keys()
                removed = None
                if not started:
                    removed = await self.store.run_retention(self.settings.retention_period)
                if removed and removed["messages"]:
                    log.info(
                        "retention removed %d messages, %d deliveries, %d attempts",
                        removed["messages"],
                        removed["deliveries"],
                        removed["attempts"],
                    )
                await self.store.warn_expiring_certificates()
                if alert and (told := await self.store.announce_blocked_keys(alert, every=every)):
                    log.warning("%d ordering keys blocked longer than %.0f s", told, alert)
            except Exception as exc:
                log.warning("housekeeping failed (%s); will try again", exc)
            started = False
            await asyncio.sleep(every)

    async def _wake_parked_loop(self) -> None:
        """Deliveries parked far ahead (a late retry, a scheduled message) back into the
        queue shortly before they are due (Store.wake_parked)."""
        while True:
            try:
                moved = await self.store.wake_parked()
                while moved >= 5000:  # a big batch: take the next one now
                    moved = await self.store.wake_parked()
            except Exception as exc:
                log.warning("waking parked deliveries failed (%s); will try again", exc)
            await asyncio.sleep(WAKE_PARKED_EVERY)

    async def _heartbeat_loop(self) -> None:
        """Liveness: beat, keep this worker's claims, hand on those of dead workers."""
        host, pid = socket.gethostname(), os.getpid()
        every = self.settings.worker_heartbeat
        while True:
            try:
                handed = await self.store.heartbeat(
                    self.worker_id,
                    host,
                    pid,
                    self.lease_seconds,
                    self.settings.worker_dead_after,
                )
                if handed:
                    log.warning("took over %d claims of a worker that stopped beating", handed)
            except Exception as exc:
                log.warning("worker heartbeat failed (%s); will try again", exc)
            await asyncio.sleep(every)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # ---- sending and recording -------------------------------------------------------

    async def _send_loop(self, n: int) -> None:
        """One sender: takes claims until it is handed None (the worker is stopping)."""
        claims, sending, send = self._claims, self._sending, self.sender.send
        tracer, header = self.tracer, self.settings.send_traceparent
        while (claim := await claims.get()) is not None:
            sending[n] = claim
            try:
                if tracer is None:
                    result = await send(claim, claim.trace_context if header else None)
                else:
                    started = time.time_ns()
                    result = await send(claim, tracer.traceparent(claim) if header else None)
                    tracer.sent(claim, started)
            except Exception:  # the sender reports failures as results; this is a bug
                log.exception("sending %s failed unexpectedly; its lease will expire", claim.msg_id)
                if tracer is not None:
                    tracer.forget([claim])
                self.slots.give_back(1)
                continue
            finally:
                del sending[n]
            self._results.append(result)
            self._results_ready.set()

    async def _record_loop(self) -> None:
        backoff = 0.0
        while True:
            await self._results_ready.wait()
            if len(self._results) < self.settings.worker_batch_size and self._sending:
                # More answers are on their way: a moment's wait turns many one-row
                # transactions into one batch (the wait is far below a database round trip
                # under load, and it is skipped when nothing else is in flight).
                await asyncio.sleep(RECORD_COALESCE)
            self._results_ready.clear()
            if self._results:
                batch, self._results = self._results, []
                started = time.time_ns() if self.tracer is not None else 0
                try:
                    await self.store.record_attempts(
                        batch,
                        self.schedule,
                        disable_after=self.settings.disable_after,
                        policy=self.policy,
                    )
                    self.delivered += len(batch)
                    metrics.attempts_recorded(batch)
                    if self.tracer is not None:
                        self.tracer.recorded(batch, started)
                    self.slots.give_back(len(batch))
                    # Claim again now, not at the next poll, if that may find work: a
                    # failure was rescheduled, or an endpoint the last claim watches (at its
                    # cap, a circuit's probe, an ordered key's head) has room or a new head.
                    # A success elsewhere changes nothing a claim would see, and a claim
                    # walks every endpoint with queued work: in a fan-out to 1,000
                    # endpoints, waking on every batch made a walk of all 1,000 per batch.
                    watch = self._watch
                    if any(not r.ok or r.delivery.endpoint_id in watch for r in batch):
                        self.store.work_queued.set()
                    backoff = 0.0
                except Exception as exc:
                    # Keep the results and try again; if this process dies first the
                    # leases expire and the deliveries are simply sent again.
                    self._results[:0] = batch
                    backoff = min(MAX_BACKOFF, backoff * 2 or 0.2)
                    log.warning("recording %d attempts failed (%s)", len(batch), exc)
                    if self._stopping.is_set() and backoff >= MAX_BACKOFF:
                        return  # shutting down with the database gone: leases will expire
                    await asyncio.sleep(backoff)
                    self._results_ready.set()
                    continue
            if self._stopping.is_set() and not self._sending and not self._results:
                return

    async def _drain(self) -> None:
        """Hand back the claims no sender has started; let the senders finish what they
        hold (for up to ``shutdown_grace``), then hand back whatever is still unsent."""
        leftover: list[ClaimedDelivery] = []
        while not self._claims.empty():
            claim = self._claims.get_nowait()
            if claim is not None:
                leftover.append(claim)
        for _ in self._senders:
            self._claims.put_nowait(None)
        if self._senders:
            await asyncio.wait(self._senders, timeout=self.shutdown_grace)
        leftover += self._sending.values()  # senders forget their claim when cancelled
        for task in self._senders:
            task.cancel()
        for task in self._senders:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._senders = []
        self._sending.clear()
        if leftover:
            if self.tracer is not None:
                self.tracer.forget(leftover)
            self.slots.give_back(len(leftover))
            with contextlib.suppress(Exception):
                await self.store.release_claims(leftover)
