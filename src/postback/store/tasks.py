"""Background tasks: long operations (recovering an endpoint's failed deliveries) whose
progress the caller reads back by id."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback import ids
from postback.domain import MessageStatus, TriggerType
from postback.store import heads
from postback.store import schema as t
from postback.store.core import StoreCore
from postback.store.errors import NotFound
from postback.store.pages import Page, PageOut, page_out, paged

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
RECOVER = "endpoint.recover"
RUNNING, FINISHED, FAILED = "running", "finished", "failed"
RECOVER_BATCH = 500


class TasksMixin(StoreCore):
    async def start_recover(
        self, app_id: str, endpoint_ref: str, since: datetime, until: datetime | None
    ) -> Row:
        """Record a recover task for an endpoint; ``run_recover`` does the work."""
        now = self.clock()
        async with self.engine.begin() as conn:
            ep = await self._get_endpoint(conn, app_id, endpoint_ref)
            row = {
                "id": ids.new_id(ids.TASK),
                "app_id": app_id,
                "task": RECOVER,
                "status": RUNNING,
                "data": {
                    "endpointId": ep["id"],
                    "since": since.isoformat(),
                    "until": until.isoformat() if until else None,
                    "recovered": 0,
                },
                "created_at": now,
                "updated_at": now,
            }
            await conn.execute(t.background_tasks.insert().values(**row))
        return row

    async def run_recover(self, task_id: str) -> Row:
        """Queue again, in batches, every failed delivery of the task's endpoint created in
        its window, each with a fresh retry schedule. Progress is written after each batch."""
        task = await self.get_task(task_id)
        data = dict(task["data"])
        since = datetime.fromisoformat(data["since"])
        until = datetime.fromisoformat(data["until"]) if data.get("until") else None
        d = t.deliveries.c
        try:
            while True:
                async with self.engine.begin() as conn:
                    await self.backend.hold_partition_drops(conn)  # old deliveries revive
                    pick = (
                        sa.select(d.id, d.msg_id)
                        .where(
                            d.endpoint_id == data["endpointId"],
                            d.status == MessageStatus.FAIL,
                            d.created_at >= since,
                        )
                        .limit(RECOVER_BATCH)
                    )
                    if until is not None:
                        pick = pick.where(d.created_at < until)
                    picked = (await conn.execute(pick)).all()
                    batch = [r.id for r in picked]
                    # Their message ids too: they prune deliveries' partitions.
                    theirs = d.msg_id.in_(sorted({r.msg_id for r in picked}))
                    if batch:
                        now = self.clock()
                        await conn.execute(
                            t.deliveries.update()
                            .where(d.id.in_(batch), theirs)
                            .values(
                                status=MessageStatus.PENDING,
                                next_attempt_at=now,
                                wake_at=None,
                                attempt_count=0,
                                trigger_type=TriggerType.RECOVER,
                                lease=None,
                                updated_at=now,
                            )
                        )
                        # Back at their messages' places: an old one may be its key's head.
                        keys = sa.select(d.ordering_key).where(
                            d.id.in_(batch), theirs, d.ordering_key.is_not(None)
                        )
                        found = [k for (k,) in await conn.execute(keys.distinct())]
                        if found:
                            await heads.reseat(conn, data["endpointId"], found)
                        await self._announce_work(conn)
                    data["recovered"] += len(batch)
                    status = RUNNING if len(batch) == RECOVER_BATCH else FINISHED
                    await self._save_task(conn, task_id, status, data)
                self._notify_work()
                if status == FINISHED:
                    break
        except Exception:
            async with self.engine.begin() as conn:
                await self._save_task(conn, task_id, FAILED, data)
            raise
        return await self.get_task(task_id)

    async def _save_task(self, conn: AsyncConnection, task_id: str, status: str, data: Row) -> None:
        await conn.execute(
            t.background_tasks.update()
            .where(t.background_tasks.c.id == task_id)
            .values(status=status, data=data, updated_at=self.clock())
        )

    async def get_task(self, task_id: str) -> Row:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(t.background_tasks).where(t.background_tasks.c.id == task_id)
                )
            ).first()
        if row is None:
            raise NotFound(f"background task {task_id!r} not found")
        return dict(row._mapping)

    async def list_tasks(
        self, page: Page, *, status: str | None = None, task: str | None = None
    ) -> PageOut:
        c = t.background_tasks.c
        stmt = sa.select(t.background_tasks)
        if status:
            stmt = stmt.where(c.status == status)
        if task:
            stmt = stmt.where(c.task == task)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(paged(stmt, c.id, page))).all()
        return page_out(rows, "id", page)
