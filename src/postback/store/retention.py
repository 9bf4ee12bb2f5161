"""Retention of records: messages older than their application's retention period are
removed with their deliveries and attempts, in short batches, by one worker at a time; and
what the tables hold, for the dashboard.

A pass walks ``messages`` in primary-key order (ids sort by creation time) a window of ids
at a time, each window one short transaction; a message with a delivery still pending
(retrying, parked, paused) or being sent is kept, with everything of it. The window grows
or shrinks so a transaction lasts about the backend's ``batch_budget``; a pass stops after
``max_seconds`` and the next one resumes where it stopped. The housekeeping row
``retention`` (schema.py) is claimed by an UPDATE that only one process can win, so any
number of workers can call ``run_retention`` at once.

On PostgreSQL ``attempts`` is partitioned by message id (store/pg/partitions.py): a pass
first drops the whole partitions past the default period that nothing keeps, then its
batches remove the rest (deliveries, messages, and the attempts of partitions kept for a
live delivery or an application's longer period), finding nothing left in a dropped one.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from postback import ids
from postback.domain import MessageStatus
from postback.store import schema as t
from postback.store.core import StoreCore

Row = dict[str, Any]
CHORE = "retention"
FIRST_WINDOW, MIN_WINDOW, MAX_WINDOW = 64, 16, 4096  # message ids per batch
# Seconds between batches: at least PAUSE, and as long as the batch took, so a pass works at
# most half the time and writers waiting for the lock go first. With only PAUSE, the
# SQLite retention bench's batches ran up to 73 ms (median 17) and ingest p99 was 115 ms
# against 20 between the calls; resting as long as each batch, at most 44 ms (median 15),
# and 66 against 6.6 (300k attempts, one run each: docs/performance.md).
PAUSE = 0.005
PARTITIONS_AHEAD = 3  # windows of POSTBACK_PARTITION_WIDTH made ahead of now
PASS_EVERY = 600.0  # seconds between complete passes
PASS_MAX = 20.0  # seconds one call works before it leaves the rest to the next
CLAIM_HOLD = 300.0  # a runner that dies frees the chore after this long
GIVE_BACK_PAGES = 25_600  # pages (100 MiB of 4 KiB) returned to the file system per pass
TABLES = ("messages", "deliveries", "attempts")
_LIVE = (int(MessageStatus.PENDING), int(MessageStatus.SENDING))
_m, _d, _a, _h = t.messages.c, t.deliveries.c, t.attempts.c, t.housekeeping.c


class RetentionMixin(StoreCore):
    async def run_retention(
        self,
        default_seconds: float,
        *,
        max_seconds: float = PASS_MAX,
        every: float = PASS_EVERY,
    ) -> Row | None:
        """Remove what is past retention, if this process wins the chore (None if another
        one runs it or it is not due). Returns what this call did, as stored for the
        dashboard: rows removed per table, batches, the longest batch, pages given back,
        the tables' figures after it (``storage``), and whether the pass reached the end
        (else ``resume_after``, the next call's start)."""
        started = self.clock()
        previous = await self._claim_chore(started)
        if previous is None:
            return None
        after = (previous.get("result") or {}).get("resume_after") or ""
        result: Row = {"messages": 0, "deliveries": 0, "attempts": 0, "batches": 0}
        result["median_batch_ms"] = result["max_batch_ms"] = 0.0
        result["partitions_dropped"] = []
        complete = False
        try:
            dropped = await self.backend.drop_expired_partitions(started, default_seconds)
            for table in TABLES:
                result[table] += dropped.get(table, 0)
            result["partitions_dropped"] = dropped["partitions"]
            complete, after = await self._remove_expired(
                default_seconds, started, after, max_seconds, result
            )
            result["pages_given_back"] = (
                await self.backend.give_back_space(GIVE_BACK_PAGES) if result["messages"] else 0
            )
            # Measured here, every PASS_EVERY, rather than on each view of the dashboard:
            # on SQLite counting rows and sizing tables reads them whole.
            result["storage"] = [
                f | {"oldest": f["oldest"].isoformat() if f["oldest"] else None}
                for f in await self.storage_figures()
            ]
        finally:
            finished = self.clock()
            result |= {
                "started_at": started.isoformat(),
                "finished_at": finished.isoformat(),
                "complete": complete,
                "resume_after": None if complete else after,
            }
            due = finished + timedelta(seconds=every if complete else 0)
            async with self.engine.begin() as conn:
                await conn.execute(
                    t.housekeeping.update()
                    .where(_h.name == CHORE)
                    .values(due_at=due, last_run_at=finished, result=result)
                )
        return result

    async def ensure_partitions(self, width: float, ahead: int = PARTITIONS_AHEAD) -> int:
        """Make the time partitions missing up to ``ahead`` windows of ``width`` seconds
        after now (PostgreSQL; any number of processes at once); how many were made."""
        return await self.backend.ensure_partitions(width, ahead)

    async def retention_status(self) -> Row | None:
        """When the last retention pass ran, what it did, and the tables' figures it took
        at its end (``storage``, as ``storage_figures`` with ``oldest`` as ISO text); None:
        never ran."""
        stmt = sa.select(_h.last_run_at, _h.result).where(_h.name == CHORE)
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None or row.last_run_at is None:
            return None
        return {"last_run_at": row.last_run_at, **(row.result or {})}

    async def storage_figures(self) -> list[Row]:
        """Per table of records: rows, bytes on disk with indexes, the oldest record."""
        out = []
        sizes = await self.backend.table_sizes(TABLES)  # before, and without, a connection
        async with self.engine.connect() as conn:
            for name in TABLES:
                table = t.metadata.tables[name]
                oldest = sa.select(table.c.created_at).order_by(table.c.id).limit(1)
                out.append({"table": name, **sizes[name], "oldest": await conn.scalar(oldest)})
        return out

    async def _claim_chore(self, now: datetime) -> Row | None:
        """Take the retention chore if it is due: one UPDATE, which one process wins."""
        hold = now + timedelta(seconds=CLAIM_HOLD)
        due = sa.or_(_h.due_at.is_(None), _h.due_at <= now)
        async with self.engine.begin() as conn:
            took = await conn.execute(
                t.housekeeping.update().where(_h.name == CHORE, due).values(due_at=hold)
            )
            if took.rowcount != 1:
                return None
            row = (await conn.execute(sa.select(_h.result).where(_h.name == CHORE))).one()
        return {"result": row.result}

    async def _remove_expired(
        self, default_seconds: float, now: datetime, after: str, max_seconds: float, result: Row
    ) -> tuple[bool, str]:
        """Batches from ``after`` on until the end (True) or ``max_seconds`` (False)."""
        async with self.engine.connect() as conn:
            shortest = await conn.scalar(sa.select(sa.func.min(t.applications.c.retention_period)))
        keep = min(default_seconds, shortest * 86400 if shortest else default_seconds)
        # No message younger than the shortest period can go: the walk stops below that id.
        ceiling = ids.floor_id(ids.MESSAGE, int((now.timestamp() - keep) * 1000))
        # Seconds a batch may take (Backend.batch_budget; SQLite: 25 ms, under the 50 ms a
        # writer may be kept waiting).
        budget = self.backend.batch_budget
        window, deadline = FIRST_WINDOW, time.monotonic() + max_seconds
        took: list[float] = []
        try:
            while time.monotonic() < deadline:
                held = time.monotonic()
                last = await self._remove_batch(
                    after, ceiling, window, now, default_seconds, result
                )
                held = time.monotonic() - held
                if last is None:
                    return True, after
                after = last
                took.append(held)
                if held > budget:
                    window = max(MIN_WINDOW, window // 2)
                elif held < budget / 2:
                    window = min(MAX_WINDOW, window * 2)
                await asyncio.sleep(max(PAUSE, held))
            return False, after
        finally:
            result["batches"] += len(took)
            if took:
                result["median_batch_ms"] = round(statistics.median(took) * 1000, 2)
                result["max_batch_ms"] = round(max(took) * 1000, 2)

    async def _remove_batch(
        self, after: str, ceiling: str, window: int, now: datetime, default: float, result: Row
    ) -> str | None:
        """One transaction: the next ``window`` message ids after ``after``; of them, those
        past their application's period with nothing left to send go, with their deliveries
        and attempts. Returns the window's last id (None: nothing left below ``ceiling``)."""
        apps = t.applications.c
        span = sa.select(_m.id).where(_m.id > after, _m.id < ceiling).order_by(_m.id).limit(window)
        kept_for = sa.func.coalesce(apps.retention_period * 86400, sa.literal(int(default)))
        live = sa.exists().where(_d.msg_id == _m.id, _d.status.in_(_LIVE))
        async with self.engine.begin() as conn:
            window_ids = list(await conn.scalars(span))
            if not window_ids:
                return None
            doomed_stmt = (
                sa.select(_m.id)
                .join(t.applications, apps.id == _m.app_id)
                .where(
                    _m.id > after,
                    _m.id <= window_ids[-1],
                    self.backend.epoch_seconds(_m.created_at)
                    < sa.literal(now.timestamp(), sa.Float) - kept_for,
                    ~live,
                )
                .order_by(_m.id)
                # A resend racing this transaction: locking the messages (FOR UPDATE, which
                # a new delivery's foreign key check waits for) and then their deliveries
                # (read in their newest version once locked) keeps any message whose
                # delivery became pending meanwhile. SQLite has one writer: nothing races.
                .with_for_update(of=t.messages)
            )
            doomed = list(await conn.scalars(doomed_stmt))
            if doomed:
                among = self.backend.among
                again = (
                    sa.select(_d.msg_id, _d.status)
                    .where(among(_d.msg_id, doomed))
                    .order_by(_d.id)
                    .with_for_update()
                )
                revived = {r.msg_id for r in await conn.execute(again) if r.status in _LIVE}
                doomed = [m for m in doomed if m not in revived]
            if doomed:
                await self.backend.forget_event_ids(conn, doomed)
                for table, key, name in (
                    (t.attempts, _a.msg_id, "attempts"),
                    (t.deliveries, _d.msg_id, "deliveries"),
                    (t.messages, _m.id, "messages"),
                ):
                    # The window's range too: on PostgreSQL it prunes attempts' partitions
                    # with the ids as one array parameter (Backend.among) as well.
                    where = (key > after, key <= window_ids[-1], self.backend.among(key, doomed))
                    gone = await conn.execute(table.delete().where(*where))
                    result[name] += gone.rowcount
        return window_ids[-1]
