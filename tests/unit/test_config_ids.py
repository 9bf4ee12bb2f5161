"""Settings from the environment, the retry schedule, ids, endpoint matching."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postback import ids
from postback.config import DEFAULT_RETRY_SCHEDULE, Settings, SettingsError, parse_duration
from postback.domain import RetrySchedule, endpoint_wants


def test_defaults_run_locally() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///./postback.db" and s.is_sqlite
    assert (s.host, s.port, s.request_timeout) == ("127.0.0.1", 8000, 15.0)
    assert s.retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)


def test_environment_and_flags() -> None:
    env = {
        "POSTBACK_PORT": "9000",
        "POSTBACK_RETRY_SCHEDULE": "1s, 250ms,2m,1h",
        "POSTBACK_REQUEST_TIMEOUT": "3s",
        "POSTBACK_ADMIN_TOKEN": "",
    }
    s = Settings.from_env(env, port=9100, host=None)
    assert s.port == 9100  # the flag wins; None means "not given"
    assert s.retry_schedule == (1, 0.25, 120, 3600)
    assert s.request_timeout == 3 and s.admin_token is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POSTBACK_PORT", "eighty"),
        ("POSTBACK_RETRY_SCHEDULE", "5s,later"),
        ("POSTBACK_REQUEST_TIMEOUT", "-1"),
        ("POSTBACK_RETENTION_PERIOD", "0"),
        ("POSTBACK_RETENTION_PERIOD", "-5d"),
        ("POSTBACK_RETENTION_PERIOD", "100000d"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_the_retention_period_is_a_duration_of_90_days_by_default() -> None:
    assert Settings().retention_period == 90 * 86400
    assert Settings.from_env({"POSTBACK_RETENTION_PERIOD": "30d"}).retention_period == 30 * 86400


def test_durations() -> None:
    assert [parse_duration(x) for x in ("15", "250ms", "5s", "5m", "2h", "5d")] == [
        15,
        0.25,
        5,
        300,
        7200,
        432000,
    ]


def test_retry_schedule() -> None:
    schedule = RetrySchedule(DEFAULT_RETRY_SCHEDULE)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert schedule.max_attempts == 8
    assert schedule.next_attempt_at(1, now) == now + timedelta(seconds=5)
    assert schedule.next_attempt_at(7, now) == now + timedelta(hours=10)
    assert schedule.next_attempt_at(8, now) is None


def test_ids_sort_by_time_and_are_unique() -> None:
    made = [ids.new_id(ids.MESSAGE) for _ in range(2000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(ids.has_prefix(i, ids.MESSAGE) for i in made)
    early = ids.new_id(ids.MESSAGE, at_ms=1_000)
    assert early < made[0]
    assert ids.floor_id(ids.MESSAGE, 1_000) <= early < ids.floor_id(ids.MESSAGE, 1_001)


@given(st.integers(min_value=0, max_value=2**48 - 2))
def test_floor_ids_order_like_time(ms: int) -> None:
    assert ids.floor_id(ids.APPLICATION, ms) < ids.floor_id(ids.APPLICATION, ms + 1)
    assert ids.floor_id(ids.APPLICATION, ms) <= ids.new_id(ids.APPLICATION, at_ms=ms)


def test_endpoint_matching() -> None:
    assert endpoint_wants(None, None, "a", None)
    assert endpoint_wants(["a"], None, "a", ["x"])
    assert not endpoint_wants(["a"], None, "b", None)
    assert endpoint_wants(None, ["p42"], "a", ["p1", "p42"])
    assert not endpoint_wants(None, ["p42"], "a", None)
    assert not endpoint_wants(None, ["p42"], "a", ["p7"])


def test_ids_for_other_times_do_not_disturb_the_sequence() -> None:
    ids.new_id(ids.MESSAGE, at_ms=2**48)  # far in the future
    now_ms = int(time.time() * 1000)
    assert ids.new_id(ids.MESSAGE) < ids.floor_id(ids.MESSAGE, now_ms + 60_000)


@given(st.integers(min_value=0, max_value=2**50 - 1), st.integers(min_value=0, max_value=2**80 - 1))
def test_id_characters_are_crockford_base32_of_time_then_randomness(ms: int, rand: int) -> None:
    text = ids._encode(ms, 10) + ids._encode(rand, 16)
    assert (
        int(text.translate(str.maketrans(ids._ALPHABET, "0123456789ABCDEFGHIJKLMNOPQRSTUV")), 32)
        == (ms << 80) | rand
    )
