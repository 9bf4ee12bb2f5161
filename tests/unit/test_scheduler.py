"""The scheduler's policy on its own (postback.delivery.scheduler): fair shares, caps, the
circuit breaker's state machine on an injectable clock, Retry-After and jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postback.delivery.scheduler import (
    CLOSED,
    Candidate,
    Circuit,
    Outcome,
    QueueHead,
    SchedulerPolicy,
    after_attempt,
    allocate,
    classify,
    plan_claim,
    retry_after_seconds,
    water_fill,
)
from postback.domain import AttemptResult, ClaimedDelivery, RetrySchedule, TriggerType

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = SchedulerPolicy(max_in_flight=10, failure_threshold=3, cooldown=30, max_cooldown=120)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_water_fill_is_as_equal_as_the_capacities_allow() -> None:
    assert water_fill([100, 100, 100], 10) == [4, 3, 3]  # the remainder to the first
    assert water_fill([1, 100, 100], 10) == [1, 5, 4]  # what one cannot take goes to others
    assert water_fill([2, 2], 10) == [2, 2]  # never more than the capacities
    assert water_fill([], 10) == []
    assert sum(water_fill([7, 0, 3, 50, 1], 40)) == 40


def test_one_big_backlog_never_fills_a_batch() -> None:
    big = Candidate("ep_big", "app_a", _at(-3600), room=50)
    small = [Candidate(f"ep_{i}", f"app_{i}", _at(-1), room=50) for i in range(3)]
    take = allocate([big, *small], 20)
    assert take == {"ep_big": 5, "ep_0": 5, "ep_1": 5, "ep_2": 5}


def test_applications_share_before_their_endpoints() -> None:
    # app_a has ten endpoints, app_b one: each application gets half of the batch.
    many = [Candidate(f"ep_a{i}", "app_a", _at(-10), room=50) for i in range(10)]
    one = Candidate("ep_b", "app_b", _at(-1), room=50)
    take = allocate([*many, one], 20)
    assert take["ep_b"] == 10
    assert sum(n for ep, n in take.items() if ep.startswith("ep_a")) == 10
    assert allocate([one], 0) == {}


def _head(ep: str = "ep_1", **kw: object) -> QueueHead:
    base: dict[str, object] = {
        "endpoint_id": ep,
        "app_id": "app_1",
        "pending_at": _at(-5),
        "claim_end": None,
        "max_in_flight": None,
        "circuit_state": 0,
        "probe_at": None,
        "paused_until": None,
        "in_flight": 0,
    }
    return QueueHead(**(base | kw))  # type: ignore[arg-type]


def test_plan_respects_caps_circuits_and_pauses() -> None:
    now = T0
    heads = [
        _head("ep_free"),
        _head("ep_full", in_flight=10),  # at the default cap of 10
        _head("ep_own_cap", max_in_flight=3, in_flight=1),
        _head("ep_open", circuit_state=1, probe_at=_at(20)),
        _head("ep_probe", circuit_state=1, probe_at=_at(-1)),
        _head("ep_probe_busy", circuit_state=1, probe_at=_at(-1), in_flight=2),
        _head("ep_paused", paused_until=_at(7)),
        _head("ep_later", pending_at=_at(3)),
        _head("ep_lapsed", pending_at=None, claim_end=_at(-1)),  # a dead worker's claim
    ]
    plan = plan_claim(heads, now, 100, POLICY)
    assert plan.take == {"ep_free": 10, "ep_own_cap": 2, "ep_probe": 1, "ep_lapsed": 10}
    assert plan.probes == {"ep_probe"}
    assert plan.caps["ep_probe"] == 1 and plan.caps["ep_own_cap"] == 3
    assert plan.next_wake == _at(3)  # ep_later, before the pause (7 s) and the probe (20 s)


def test_the_plan_watches_only_endpoints_a_recorded_attempt_can_unblock() -> None:
    heads = [
        _head("ep_free"),
        _head("ep_full", in_flight=10),  # at its cap: a result frees room
        _head("ep_probe_busy", circuit_state=1, probe_at=_at(-1), in_flight=2),
        _head("ep_probe", circuit_state=1, probe_at=_at(-1)),  # its success closes it
        _head("ep_keys", ordered=True),  # a head's success makes the next head
        _head("ep_later", pending_at=_at(3)),  # its time wakes the worker, not a result
    ]
    plan = plan_claim(heads, T0, 100, POLICY)
    # ep_free and ep_keys are taken up to their cap of 10: leased, they are at it.
    assert plan.watch == {"ep_free", "ep_full", "ep_probe_busy", "ep_probe", "ep_keys"}
    # A fan-out: each endpoint takes one of its ten, and none is watched.
    fan = [_head(f"ep_{i}") for i in range(100)]
    fanned = plan_claim(fan, T0, 100, POLICY)
    assert sum(fanned.take.values()) == 100 and fanned.watch == set()
    # An ordered endpoint the batch did not reach is not watched: the claim was full.
    assert plan_claim([*fan, _head("ep_keys", ordered=True)], T0, 100, POLICY).watch == set()


def test_half_open_with_its_probe_out_waits_then_probes_again() -> None:
    out = _head(circuit_state=2, probe_at=_at(30), in_flight=1)
    assert plan_claim([out], T0, 10, POLICY).take == {}
    lapsed = _head(circuit_state=2, probe_at=_at(-1), claim_end=_at(-1), in_flight=0)
    assert plan_claim([lapsed], T0, 10, POLICY).take == {"ep_1": 1}


def _result(code: int) -> AttemptResult:
    claim = ClaimedDelivery(
        "dlv_1", "l", "msg_1", "app_1", "ep_1", "http://x", (b"k",), {}, b"{}", 0, TriggerType(0)
    )
    return AttemptResult(claim, T0, code, "", 1)


def test_what_counts_as_a_failure() -> None:
    assert classify(_result(200)) is Outcome.OK
    assert classify(_result(0)) is Outcome.FAILED  # timeout, connection refused
    assert classify(_result(503)) is Outcome.FAILED
    assert classify(_result(408)) is Outcome.FAILED
    assert classify(_result(429)) is Outcome.NEUTRAL
    assert classify(_result(404)) is Outcome.ANSWERED


def test_breaker_opens_probes_reopens_longer_and_closes() -> None:
    view, moved = CLOSED, None
    for n in range(2):
        view, moved = after_attempt(view, Outcome.FAILED, _at(n), POLICY)
        assert view.state is Circuit.CLOSED and moved is None
    view, moved = after_attempt(view, Outcome.FAILED, _at(2), POLICY)
    assert moved is Circuit.OPEN and view.probe_at == _at(32) and view.opens == 1
    # Late failures of attempts that were in flight change nothing but the count.
    view2, moved = after_attempt(view, Outcome.FAILED, _at(3), POLICY)
    assert moved is None and view2.probe_at == view.probe_at and view2.failures == 4
    # The probe (half-open) fails: open again, with twice the cool-down.
    half = view2._replace(state=Circuit.HALF_OPEN)
    view3, moved = after_attempt(half, Outcome.FAILED, _at(40), POLICY)
    assert moved is Circuit.OPEN and view3.probe_at == _at(100) and view3.opens == 2
    # ... up to the longest cool-down.
    view4, _ = after_attempt(
        view3._replace(state=Circuit.HALF_OPEN, opens=9), Outcome.FAILED, _at(0), POLICY
    )
    assert view4.probe_at == _at(120)
    # A success closes it and forgets the history; so does any answer (the receiver is up).
    closed, moved = after_attempt(
        view3._replace(state=Circuit.HALF_OPEN), Outcome.OK, _at(200), POLICY
    )
    assert moved is Circuit.CLOSED and closed == CLOSED._replace(since=_at(200))
    _, moved = after_attempt(view3, Outcome.ANSWERED, _at(200), POLICY)
    assert moved is Circuit.CLOSED
    # 429 says "slow down", not "down".
    assert after_attempt(view3, Outcome.NEUTRAL, _at(200), POLICY) == (view3, None)


def test_a_success_resets_the_count_below_the_threshold() -> None:
    view, _ = after_attempt(CLOSED, Outcome.FAILED, T0, POLICY)
    view, _ = after_attempt(view, Outcome.FAILED, T0, POLICY)
    view, _ = after_attempt(view, Outcome.OK, T0, POLICY)
    view, moved = after_attempt(view, Outcome.FAILED, T0, POLICY)
    assert view.state is Circuit.CLOSED and view.failures == 1 and moved is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("9" * 5000, 3600.0),  # absurdly far: bounded
        ("Tue, 01 Dec 2026 12:01:00 GMT", 60.0),
        ("Mon, 01 Dec 2025 12:00:00 GMT", 0.0),  # in the past: no wait
        ("Fri, 01 Dec 2099 12:00:00 GMT", 3600.0),  # years ahead: bounded
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
        ("\x00\xff", None),
    ],
)
def test_retry_after_is_read_and_bounded(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, T0, 3600) == expected


def test_retries_are_jittered_within_their_share() -> None:
    schedule = RetrySchedule((100.0,), jitter=0.2)
    times = {schedule.next_attempt_at(1, T0) for _ in range(50)}
    assert len(times) > 40 and all(_at(100) <= t <= _at(120) for t in times if t)
    assert RetrySchedule((100.0,)).next_attempt_at(1, T0) == _at(100)  # no jitter asked
