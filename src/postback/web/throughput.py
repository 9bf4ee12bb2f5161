"""The dashboard's throughput: attempts per five-minute slot over the last day, one snapshot
that both charts (the hour and the day) are drawn from, so the hour never counts more than
the day. The snapshot lives in the process and is brought up to date by reading again only
the slots that can still change: a view of the dashboard reads minutes of attempts, not a
day of them (only the first view after a start reads the whole day)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from postback.web.charts import Bar

SLOT = 300  # seconds: the hour chart's bars
SLOTS_PER_HOUR = 3600 // SLOT
HOUR_SLOTS = 12
DAY_HOURS = 24
# An attempt can land in a slot this long after the slot's time: it is stamped when recorded,
# and another process's transaction may commit after our read (the store's id margin).
SETTLING = timedelta(minutes=5)
KEEP = 5.0  # seconds a snapshot is shown before it is brought up to date

Counts = dict[int, tuple[int, int]]
ReadCounts = Callable[[datetime, int], Awaitable[Counts]]


def _at(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * SLOT, UTC)


@dataclass
class Throughput:
    """``slots`` maps a slot (seconds since the epoch // SLOT) to (succeeded, failed)."""

    slots: Counts = field(default_factory=dict)
    now_slot: int = 0
    settled_before: int | None = None  # slots below this one are not read again
    fresh_until: float = 0.0  # time.monotonic() after which the snapshot is renewed

    async def refresh(self, read: ReadCounts, now: datetime) -> Throughput:
        """The snapshot at ``now``: this one while fresh, else one brought up to date with
        ``read(since, SLOT)`` (the store's ``attempt_counts``)."""
        if time.monotonic() < self.fresh_until:
            return self
        now_slot = int(now.timestamp()) // SLOT
        first = self._first_slot(now_slot)
        start = first if self.settled_before is None else max(first, self.settled_before)
        counts = await read(_at(start), SLOT)
        kept = {s: c for s, c in self.slots.items() if first <= s < start}
        settled = int((now - SETTLING).timestamp()) // SLOT
        return Throughput(kept | counts, now_slot, settled, time.monotonic() + KEEP)

    @staticmethod
    def _first_slot(now_slot: int) -> int:
        """The day is the current clock hour and the 23 before it."""
        return (now_slot // SLOTS_PER_HOUR - (DAY_HOURS - 1)) * SLOTS_PER_HOUR

    def hour(self) -> list[Bar]:
        """The last twelve five-minute slots, the current one last."""
        return [
            self._bar(s, s + 1, "%H:%M")
            for s in range(self.now_slot - HOUR_SLOTS + 1, self.now_slot + 1)
        ]

    def day(self) -> list[Bar]:
        """The day's clock hours, the current one last."""
        first = self._first_slot(self.now_slot)
        return [
            self._bar(s, s + SLOTS_PER_HOUR, "%H:00")
            for s in range(first, first + DAY_HOURS * SLOTS_PER_HOUR, SLOTS_PER_HOUR)
        ]

    def _bar(self, start: int, end: int, label: str) -> Bar:
        counts = [self.slots.get(s, (0, 0)) for s in range(start, end)]
        good, bad = sum(c[0] for c in counts), sum(c[1] for c in counts)
        return Bar(_at(start).strftime(label), good, bad)
