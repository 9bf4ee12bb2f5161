"""What goes out next: fair shares across applications and endpoints, per-endpoint caps,
the circuit breaker and receivers' Retry-After (retry jitter is RetrySchedule's, in
postback.domain).

Pure policy, no I/O: the store applies it inside its claim and record transactions (so
every worker process shares one state through the database), and the tests drive it on
an injectable clock.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import NamedTuple

from postback.domain import AttemptResult, ClaimedDelivery


class Circuit(enum.IntEnum):
    """An endpoint's circuit. Open: its deliveries wait (they are not attempted and their
    retry schedules do not advance) until the next probe; half-open: one probe is out."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    @property
    def text(self) -> str:
        return self.name.lower().replace("_", "-")


class Outcome(enum.Enum):
    """What an attempt says about the receiver's health."""

    OK = "ok"  # 2xx
    ANSWERED = "answered"  # the receiver is up but refused (3xx, 4xx other than 408/429)
    FAILED = "failed"  # no answer (timeout, connection error), 408 or 5xx
    NEUTRAL = "neutral"  # 429: the receiver asks us to slow down, not a sign of an outage


def classify(result: AttemptResult) -> Outcome:
    if result.fault is not None:
        return Outcome.NEUTRAL  # our proxy failed: nothing is known about the receiver
    code = result.status_code
    if 200 <= code <= 299:
        return Outcome.OK
    if code == 429:
        return Outcome.NEUTRAL
    if code == 0 or code == 408 or code >= 500:
        return Outcome.FAILED
    return Outcome.ANSWERED


@dataclass(frozen=True)
class SchedulerPolicy:
    """The scheduler's settings (POSTBACK_ENDPOINT_MAX_IN_FLIGHT, POSTBACK_CIRCUIT_*)."""

    max_in_flight: int = 200
    failure_threshold: int = 5
    cooldown: float = 30.0
    max_cooldown: float = 600.0

    def cooldown_after(self, opens: int) -> float:
        """The wait before the next probe after the circuit opened ``opens`` times in a
        row: doubling from ``cooldown`` up to ``max_cooldown``."""
        return min(self.max_cooldown, self.cooldown * 2 ** max(0, min(opens, 32) - 1))


DEFAULT_POLICY = SchedulerPolicy()


class CircuitView(NamedTuple):
    """An endpoint's breaker columns."""

    state: Circuit
    since: datetime | None
    probe_at: datetime | None
    failures: int
    opens: int


CLOSED = CircuitView(Circuit.CLOSED, None, None, 0, 0)


def after_attempt(
    view: CircuitView, outcome: Outcome, now: datetime, policy: SchedulerPolicy
) -> tuple[CircuitView, Circuit | None]:
    """The breaker after one attempt, and the state it moved to (None if it did not)."""
    if outcome is Outcome.NEUTRAL:
        return view, None
    if outcome is not Outcome.FAILED:
        if view.state is Circuit.CLOSED:
            return (view._replace(failures=0) if view.failures else view), None
        return CircuitView(Circuit.CLOSED, now, None, 0, 0), Circuit.CLOSED
    failures = view.failures + 1
    if view.state is Circuit.HALF_OPEN or (
        view.state is Circuit.CLOSED and failures >= policy.failure_threshold
    ):
        opens = view.opens + 1
        probe_at = now + timedelta(seconds=policy.cooldown_after(opens))
        return CircuitView(Circuit.OPEN, now, probe_at, failures, opens), Circuit.OPEN
    # Still closed below the threshold, or open already (attempts that were in flight
    # when it opened come back one by one): count, change nothing else.
    return view._replace(failures=failures), None


class Candidate(NamedTuple):
    """An endpoint with due deliveries, as the claim sees it."""

    endpoint_id: str
    app_id: str
    due_at: datetime
    room: int  # deliveries it may still have in flight (cap minus live claims, or 1 probe)


def allocate(candidates: Sequence[Candidate], limit: int) -> dict[str, int]:
    """How many deliveries to claim from each endpoint, at most ``limit`` in all.

    Fair by construction: the batch is first shared equally between applications (an
    application with a thousand endpoints gets no more than one with one), then each
    application's share equally between its endpoints, each bounded by its room. Whatever
    is left over by those who need less goes to the others; ties go to the oldest due."""
    apps: dict[str, list[Candidate]] = {}
    for c in sorted(candidates, key=lambda c: c.due_at):
        if c.room > 0:
            apps.setdefault(c.app_id, []).append(c)
    if not apps or limit <= 0:
        return {}
    groups = list(apps.values())
    app_shares = water_fill([sum(c.room for c in g) for g in groups], limit)
    out: dict[str, int] = {}
    for group, share in zip(groups, app_shares, strict=True):
        for c, n in zip(group, water_fill([c.room for c in group], share), strict=True):
            if n:
                out[c.endpoint_id] = n
    return out


def water_fill(capacities: Sequence[int], total: int) -> list[int]:
    """Split ``total`` into parts bounded by ``capacities``, as equal as they can be; the
    remainder goes to the first ones (callers list them in priority order)."""
    left = min(total, sum(capacities))
    # The level every part reaches unless its capacity is lower: fill the smallest first.
    level, rest = max(capacities, default=0), len(capacities)
    for cap in sorted(capacities):
        if cap * rest <= left:
            left -= cap
            rest -= 1
        else:
            level = left // rest
            left -= level * rest
            break
    else:
        left = 0  # every part is full
    out = [min(cap, level) for cap in capacities]
    for i, cap in enumerate(capacities):
        if not left:
            break
        if out[i] < cap:
            out[i] += 1
            left -= 1
    return out


def retry_after_seconds(value: str | None, now: datetime, bound: float) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from ``now``, within
    ``[0, bound]``; None when absent or unreadable (garbage never fails an attempt)."""
    if not value:
        return None
    value = value.strip()
    seconds: float
    if value.isdigit():
        seconds = float(value[:12])  # a 10,000-digit number is still just "very long"
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, min(bound, seconds))


class QueueHead(NamedTuple):
    """One endpoint with queued deliveries, as the claim's first read finds it."""

    endpoint_id: str
    app_id: str
    pending_at: datetime | None  # its earliest pending delivery's due time
    claim_end: datetime | None  # its earliest claim's end (past: a lapsed claim, due)
    max_in_flight: int | None
    circuit_state: int
    probe_at: datetime | None
    paused_until: datetime | None
    in_flight: int  # live claims
    ordered: bool = False  # claimed key head by key head (docs: "Ordered delivery")


class ClaimPlan(NamedTuple):
    take: dict[str, int]  # endpoint id -> deliveries to claim
    caps: dict[str, int]  # endpoint id -> its cap, checked again under its lock
    probes: frozenset[str]  # endpoints whose claim is a half-open circuit's probe
    next_wake: datetime | None  # when the next endpoint not claimable now becomes so
    # Endpoints whose recorded attempts may make more of their work claimable at once: due
    # but at their cap, or filled to it by this claim; a probe waiting for the attempts
    # still out, or taken (its success closes the circuit); an ordered endpoint taken (a
    # head's success makes the next one). Another endpoint's recorded success changes
    # nothing a claim would see.
    watch: frozenset[str] = frozenset()


class ClaimBatch(NamedTuple):
    """What one claim took, and when the next endpoint not claimable now becomes so (a
    future retry, a circuit's probe, the end of a Retry-After pause), and the endpoints
    whose recorded attempts are worth claiming again for (ClaimPlan.watch)."""

    claims: list[ClaimedDelivery]
    next_wake: datetime | None
    watch: frozenset[str] = frozenset()


def plan_claim(
    heads: Sequence[QueueHead], now: datetime, limit: int, policy: SchedulerPolicy
) -> ClaimPlan:
    """Which endpoints to claim from now, and how many each: those with due deliveries
    whose circuit is closed (or due a probe), not paused by a Retry-After, below their
    cap, shared fairly by ``allocate``."""
    candidates: list[Candidate] = []
    caps: dict[str, int] = {}
    probes: set[str] = set()
    next_wake: datetime | None = None
    # One pass over every endpoint with queued work (a thousand in a fan-out, each claim):
    # the head is unpacked once, not read field by field.
    closed = Circuit.CLOSED
    watch: set[str] = set()
    ordered: set[str] = set()
    for ep, app, pending, claim_end, max_in_flight, circuit, probe_at, paused, live, o in heads:
        if pending is None:
            if claim_end is None:
                continue
            due = claim_end
        else:
            due = claim_end if claim_end is not None and claim_end < pending else pending
        ready = due
        if paused is not None and paused > ready:
            ready = paused
        probe = circuit != closed
        # Open: the probe may go at probe_at. Half-open: the probe is out until probe_at
        # (its claim's end); past that, its worker is gone: probe again.
        if probe and probe_at is not None and probe_at > ready:
            ready = probe_at
        if ready > now:
            if next_wake is None or ready < next_wake:
                next_wake = ready
            continue
        if probe:
            # A probe goes alone: attempts still out from before the circuit opened
            # finish first (they come back as failures or as the success that closes it).
            watch.add(ep)
            if live:
                continue
            caps[ep] = 1
            probes.add(ep)
            candidates.append(Candidate(ep, app, due, 1))
            continue
        cap = max_in_flight or policy.max_in_flight
        if live >= cap:
            watch.add(ep)  # at its cap: a recorded attempt frees room and wakes the worker
            continue
        if o:
            ordered.add(ep)
        caps[ep] = cap
        candidates.append(Candidate(ep, app, due, cap - live))
    take = allocate(candidates, limit)
    watch.update(ep for ep in ordered if ep in take)
    # Those this claim fills to their cap: once it is leased they are at it too.
    watch.update(c.endpoint_id for c in candidates if take.get(c.endpoint_id, 0) >= c.room)
    return ClaimPlan(
        take, caps, frozenset(p for p in probes if p in take), next_wake, frozenset(watch)
    )
