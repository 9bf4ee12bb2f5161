"""Background tasks the svix SDKs start beside recover: replaying to an endpoint the
messages it never got (``endpoint.replay``), and the usage statistics of applications
(``application.stats``) and of their subscriptions (``event-type.aggregate``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback import ids
from postback.domain import MessageStatus
from postback.store import heads
from postback.store import schema as t
from postback.store.core import OPERATIONAL_APP_ID, StoreCore
from postback.store.routing import ROUTING_COLUMNS, route

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
REPLAY = "endpoint.replay"
APP_STATS = "application.stats"
EVENT_TYPE_AGGREGATE = "event-type.aggregate"
REPLAY_BATCH = 500
_e, _m, _d = t.endpoints.c, t.messages.c, t.deliveries.c


class UsageMixin(StoreCore):
    if TYPE_CHECKING:  # tasks.py's, declared for the type checker only

        async def _save_task(
            self, conn: AsyncConnection, task_id: str, status: str, data: Row
        ) -> None: ...

    async def _new_task(self, app_id: str | None, task: str, data: Row) -> Row:
        now = self.clock()
        row = {
            "id": ids.new_id(ids.TASK),
            "app_id": app_id,
            "task": task,
            "status": "running",
            "data": data,
            "created_at": now,
            "updated_at": now,
        }
        async with self.engine.begin() as conn:
            await conn.execute(t.background_tasks.insert().values(**row))
        return row

    async def start_replay(
        self, app_id: str, endpoint_ref: str, since: datetime, until: datetime | None
    ) -> Row:
        """Record a replay task: the endpoint's missing messages of the window."""
        async with self.engine.connect() as conn:
            ep = await self._get_endpoint(conn, app_id, endpoint_ref)
        window = {"since": since.isoformat(), "until": until.isoformat() if until else None}
        return await self._new_task(
            app_id, REPLAY, {"endpointId": ep["id"], **window, "messagesSent": 0}
        )

    async def run_replay(self, task_id: str) -> None:
        """Send the endpoint, in batches, every message of its application created in the
        window that it has no delivery of (it did not exist yet, was disabled, or was
        subscribed otherwise), as it would route them today: its subscriptions, product
        and payload filter decide. Messages whose payload is gone are left out."""
        task = await self._task(task_id)
        data = dict(task["data"])
        since = datetime.fromisoformat(data["since"])
        until = datetime.fromisoformat(data["until"]) if data.get("until") else None
        after = ""
        try:
            while True:
                async with self.engine.begin() as conn:
                    await self.backend.hold_partition_drops(conn)  # old messages resent
                    after, sent, more = await self._replay_batch(
                        conn, task["app_id"], data["endpointId"], since, until, after
                    )
                    data["messagesSent"] += sent
                    await self._save_task(conn, task_id, "running" if more else "finished", data)
                    if sent:
                        await self._announce_work(conn)
                if sent:
                    self._notify_work()
                if not more:
                    return
        except Exception:
            async with self.engine.begin() as conn:
                await self._save_task(conn, task_id, "failed", data)
            raise

    async def _replay_batch(
        self,
        conn: AsyncConnection,
        app_id: str,
        ep_id: str,
        since: datetime,
        until: datetime | None,
        after: str,
    ) -> tuple[str, int, bool]:
        ep = (
            await conn.execute(sa.select(*ROUTING_COLUMNS, _e.disabled).where(_e.id == ep_id))
        ).first()
        if ep is None:
            return after, 0, False  # deleted meanwhile: nothing more to send it
        already = sa.select(_d.id).where(_d.msg_id == _m.id, _d.endpoint_id == ep_id)
        stmt = (
            sa.select(t.messages)
            .where(_m.app_id == app_id, _m.id > after, _m.created_at >= since, ~already.exists())
            .order_by(_m.id)
            .limit(REPLAY_BATCH)
            # As a foreign key's check would: a retention batch removing one of them waits,
            # or has removed it (store/core.py, _get_message).
            .with_for_update(read=True, key_share=True, of=t.messages)
        )
        if until is not None:
            stmt = stmt.where(_m.created_at < until)
        rows = [dict(r._mapping) for r in await conn.execute(stmt)]
        now = self.clock()
        deliveries = []
        for msg in rows:
            if not msg["payload"]:
                continue
            later = msg["deliver_at"] if msg["deliver_at"] and msg["deliver_at"] > now else None
            deliveries.extend(route(msg | {"created_at": now, "deliver_at": later}, [ep]))
        if ep.disabled:  # kept paused: enabling the endpoint makes them due
            for d in deliveries:
                d.update(next_attempt_at=None, wake_at=None)
        if deliveries:
            await heads.seat_new(conn, deliveries)
            await conn.execute(t.deliveries.insert(), deliveries)
            placed = {d["ordering_key"] for d in deliveries if d["ordering_key"] is not None}
            if placed:  # older messages than the key's waiting ones: they go first
                await heads.reseat(conn, ep.id, placed)
        sent = sum(d["status"] == MessageStatus.PENDING for d in deliveries)
        last = rows[-1]["id"] if rows else after
        return last, sent, len(rows) == REPLAY_BATCH

    async def _task(self, task_id: str) -> Row:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(t.background_tasks).where(t.background_tasks.c.id == task_id)
                )
            ).one()
        return dict(row._mapping)

    async def start_app_stats(
        self, since: datetime, until: datetime, app_refs: Sequence[str] | None
    ) -> tuple[Row | None, list[str]]:
        """Record an application-usage task; returns it and the ids or uids not found (no
        task, when ids were given and none is an application)."""
        a = t.applications.c
        resolved: list[Row] = []
        unresolved: list[str] = []
        async with self.engine.connect() as conn:
            for ref in app_refs or []:
                found = (
                    await conn.execute(
                        sa.select(a.id, a.uid).where(
                            sa.or_(a.id == ref, a.uid == ref), a.id != OPERATIONAL_APP_ID
                        )
                    )
                ).first()
                if found is None:
                    unresolved.append(ref)
                else:
                    resolved.append({"appId": found.id, "appUid": found.uid})
        if app_refs and not resolved:
            return None, unresolved
        data = {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "apps": resolved if app_refs else None,
            "appStats": [],
        }
        return await self._new_task(None, APP_STATS, data), unresolved

    async def run_app_stats(self, task_id: str) -> None:
        """Count each application's message destinations (deliveries that were not
        canceled) of the window."""
        task = await self._task(task_id)
        data = dict(task["data"])
        a = t.applications.c
        stmt = (
            sa.select(_d.app_id, a.uid, sa.func.count().label("n"))
            .join(t.applications, a.id == _d.app_id)
            .where(
                _d.created_at >= datetime.fromisoformat(data["since"]),
                _d.created_at < datetime.fromisoformat(data["until"]),
                _d.status != int(MessageStatus.CANCELED),
                _d.app_id != OPERATIONAL_APP_ID,
            )
            .group_by(_d.app_id, a.uid)
        )
        wanted = data.pop("apps")
        if wanted is not None:
            stmt = stmt.where(_d.app_id.in_([w["appId"] for w in wanted]))
        async with self.engine.begin() as conn:
            counts = {r.app_id: (r.uid, r.n) for r in await conn.execute(stmt)}
            listed = (
                wanted
                if wanted is not None
                else [
                    {"appId": app_id, "appUid": uid} for app_id, (uid, _n) in sorted(counts.items())
                ]
            )
            data["appStats"] = [
                app | {"messageDestinations": counts.get(app["appId"], (None, 0))[1]}
                for app in listed
            ]
            await self._save_task(conn, task_id, "finished", data)

    async def start_event_type_aggregate(self) -> Row:
        return await self._new_task(None, EVENT_TYPE_AGGREGATE, {"event_types": []})

    async def run_event_type_aggregate(self, task_id: str) -> None:
        """Per application with endpoints: the event types its endpoints name, and whether
        one of them takes every event type."""
        stmt = (
            sa.select(_e.app_id, _e.event_types)
            .where(_e.app_id != OPERATIONAL_APP_ID)
            .order_by(_e.app_id)
        )
        apps: dict[str, tuple[set[str], bool]] = {}
        async with self.engine.begin() as conn:
            for app_id, event_types in await conn.execute(stmt):
                named, catch_all = apps.get(app_id, (set(), False))
                named |= set(event_types or [])
                apps[app_id] = (named, catch_all or not event_types)
            data = {
                "event_types": [
                    {
                        "appId": app_id,
                        "explicitlySubscribedEventTypes": sorted(named),
                        "hasCatchAllEndpoint": catch_all,
                    }
                    for app_id, (named, catch_all) in apps.items()
                ]
            }
            await self._save_task(conn, task_id, "finished", data)
