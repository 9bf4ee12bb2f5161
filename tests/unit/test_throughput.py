"""The dashboard's throughput snapshot: both charts from one set of slot counts (the hour
never counts more than the day), and an update reads only the slots that can still change."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from postback.web.throughput import SLOT, Counts, Throughput

NOW = datetime(2026, 3, 2, 15, 7, 30, tzinfo=UTC)


class Database:
    """Attempt counts per slot, read as the store's ``attempt_counts`` does."""

    def __init__(self, slots: Counts) -> None:
        self.slots = slots
        self.reads: list[datetime] = []

    async def read(self, since: datetime, width: int) -> Counts:
        assert width == SLOT
        self.reads.append(since)
        first = int(since.timestamp()) // SLOT
        return {s: c for s, c in self.slots.items() if s >= first}


def slot(at: datetime) -> int:
    return int(at.timestamp()) // SLOT


def totals(bars: list) -> tuple[int, int]:
    return sum(b.good for b in bars), sum(b.bad for b in bars)


def test_both_charts_come_from_one_snapshot() -> None:
    db = Database({slot(NOW): (3, 1), slot(NOW - timedelta(minutes=30)): (2, 0)})
    db.slots[slot(NOW - timedelta(hours=5))] = (10, 4)  # in the day, not the hour
    db.slots[slot(NOW - timedelta(hours=30))] = (99, 99)  # before the day
    snap = asyncio.run(Throughput().refresh(db.read, NOW))
    hour, day = snap.hour(), snap.day()
    assert len(hour) == 12 and len(day) == 24
    assert (hour[-1].label, day[-1].label) == ("15:05", "15:00")
    assert totals(hour) == (5, 1)
    assert totals(day) == (15, 5)
    # The day starts at the clock hour 23 hours before this one.
    assert db.reads == [datetime(2026, 3, 1, 16, 0, tzinfo=UTC)]


def test_an_update_reads_only_the_slots_still_settling() -> None:
    db = Database({slot(NOW - timedelta(hours=2)): (7, 0), slot(NOW): (1, 0)})
    snap = asyncio.run(Throughput().refresh(db.read, NOW))
    # Still fresh: shown again without a read.
    assert asyncio.run(snap.refresh(db.read, NOW)) is snap and len(db.reads) == 1
    later = NOW + timedelta(minutes=3)
    db.slots[slot(NOW)] = (4, 2)  # recorded since, in a slot the snapshot already had
    db.slots[slot(NOW - timedelta(hours=2))] = (1000, 0)  # settled: not read again
    snap = asyncio.run(replace(snap, fresh_until=0.0).refresh(db.read, later))
    assert db.reads[1] == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # NOW - 5 min, its slot
    assert totals(snap.hour()) == (4, 2)
    assert totals(snap.day()) == (11, 2)


def test_the_hour_never_counts_more_than_the_day() -> None:
    rng = random.Random(21)
    for _ in range(200):
        now = NOW + timedelta(seconds=rng.randrange(0, 3 * 86400))
        db = Database(
            {
                slot(now - timedelta(seconds=rng.randrange(0, 30 * 3600))): (
                    rng.randrange(5),
                    rng.randrange(5),
                )
                for _ in range(40)
            }
        )
        snap = asyncio.run(Throughput().refresh(db.read, now))
        hour, day = totals(snap.hour()), totals(snap.day())
        assert hour[0] <= day[0] and hour[1] <= day[1]
        in_hour = [c for s, c in db.slots.items() if slot(now) - 12 < s <= slot(now)]
        assert hour == (sum(c[0] for c in in_hour), sum(c[1] for c in in_hour))
