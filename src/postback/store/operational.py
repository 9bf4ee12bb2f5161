"""Operational webhooks (postback's own events, for the operator) and endpoint health:
failure streaks, auto-disable.

Operational events are ordinary messages of a hidden application whose endpoints the
operator registers under /api/v1/operational-webhook/endpoint, so they are signed, retried
and recorded by the same engine. They are emitted inside the transaction that causes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback import ids
from postback.domain import AttemptResult, MessageStatus, TriggerType, encode_json
from postback.store import schema as t

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]

OPERATIONAL_APP_ID = "app_" + "0" * 22 + "oper"
# Svix sends message.attempt.failing on the fourth failed attempt of a message.
FAILING_AFTER = 4

ENDPOINT_CREATED = "endpoint.created"
ENDPOINT_UPDATED = "endpoint.updated"
ENDPOINT_DELETED = "endpoint.deleted"
ENDPOINT_DISABLED = "endpoint.disabled"
ATTEMPT_EXHAUSTED = "message.attempt.exhausted"
ATTEMPT_FAILING = "message.attempt.failing"
ATTEMPT_RECOVERED = "message.attempt.recovered"


class OperationalMixin:
    clock: Callable[[], datetime]
    dialect: str

    async def _insert_message(
        self, conn: AsyncConnection, row: Row, only_endpoint: str | None = None
    ) -> int: ...

    async def _pause_deliveries(
        self, conn: AsyncConnection, ep_id: str, *, paused: bool
    ) -> None: ...

    async def _emit(self, conn: AsyncConnection, event_type: str, data: Row) -> int:
        """Queue an operational event to the operator's endpoints that want it."""
        now = self.clock()
        body = {"type": event_type, "timestamp": now.isoformat(), "data": data}
        row = {
            "id": ids.new_id(ids.MESSAGE),
            "app_id": OPERATIONAL_APP_ID,
            "event_type": event_type,
            "event_id": None,
            "payload": encode_json(body),
            "channels": None,
            "tags": None,
            "created_at": now,
            "deliver_at": None,
        }
        return await self._insert_message(conn, row)

    async def _emit_endpoint_event(
        self, conn: AsyncConnection, event_type: str, ep: Row, **extra: Any
    ) -> None:
        if ep["app_id"] == OPERATIONAL_APP_ID:
            return  # the operator's own endpoints raise no events about themselves
        app_uid = await conn.scalar(
            sa.select(t.applications.c.uid).where(t.applications.c.id == ep["app_id"])
        )
        data = {
            "appId": ep["app_id"],
            "appUid": app_uid,
            "endpointId": ep["id"],
            "endpointUid": ep.get("uid"),
            **extra,
        }
        await self._emit(conn, event_type, data)

    async def _track_health(
        self,
        conn: AsyncConnection,
        results: Sequence[AttemptResult],
        outcomes: Sequence[tuple[MessageStatus, datetime | None, int]],
        disable_after: float | None,
    ) -> None:
        """After a batch of attempts: per-message failing/exhausted/recovered events, each
        endpoint's failure clock, and auto-disable of endpoints failing for too long."""
        now = self.clock()
        customer = [
            (res, out)
            for res, out in zip(results, outcomes, strict=True)
            if res.delivery.app_id != OPERATIONAL_APP_ID
        ]
        if not customer:
            return
        e = t.endpoints.c
        ep_ids = sorted({res.delivery.endpoint_id for res, _ in customer})
        if plain_successes([res for res, _ in customer], [out for _, out in customer]):
            # The usual batch: nothing to announce, nothing to disable. Only endpoints that
            # were failing change, so only those are read and locked (a fan-out batch
            # touches a hundred endpoints; locking each row costs a write on PostgreSQL).
            ep_ids = await self._failing_among(conn, ep_ids)
            if ep_ids:
                await conn.execute(
                    t.endpoints.update().where(e.id.in_(ep_ids)).values(failing_since=None)
                )
            return
        stmt = (
            sa.select(e.id, e.app_id, e.uid, e.disabled, e.failing_since)
            .where(e.id.in_(ep_ids))
            .order_by(e.id)  # every worker locks in the same order
        )
        if self.dialect == "postgresql":
            # Two workers finishing at once count correctly. NO KEY UPDATE, not UPDATE: the
            # attempts this transaction (and others) just inserted hold KEY SHARE locks on
            # these endpoints through their foreign keys; FOR UPDATE waits for those, and two
            # recorders waiting on each other's is a deadlock.
            stmt = stmt.with_for_update(key_share=True)
        endpoints = {r.id: dict(r._mapping) for r in await conn.execute(stmt)}
        changed: set[str] = set()
        for res, (status, _next, count) in sorted(customer, key=lambda ro: ro[0].at):
            ep = endpoints.get(res.delivery.endpoint_id)
            if ep is None:
                continue  # deleted while the attempt was in flight
            if res.ok:
                if ep["failing_since"] is not None:
                    ep["failing_since"] = None
                    changed.add(ep["id"])
                if recovers(res, count):
                    await self._attempt_event(conn, ATTEMPT_RECOVERED, res, ep)
                continue
            if ep["failing_since"] is None:
                ep["failing_since"] = now  # the store clock, which tests can move
                changed.add(ep["id"])
            if res.delivery.trigger is TriggerType.SCHEDULED and count == FAILING_AFTER:
                await self._attempt_event(conn, ATTEMPT_FAILING, res, ep)
            if status is MessageStatus.FAIL:
                await self._attempt_event(conn, ATTEMPT_EXHAUSTED, res, ep)
        for ep_id in changed:
            await conn.execute(
                t.endpoints.update()
                .where(e.id == ep_id)
                .values(failing_since=endpoints[ep_id]["failing_since"])
            )
        if disable_after is None:
            return
        limit = now - timedelta(seconds=disable_after)
        for ep in endpoints.values():
            since = ep["failing_since"]
            if not ep["disabled"] and since is not None and since <= limit:
                await self._auto_disable(conn, ep, since, now)

    async def _failing_among(self, conn: AsyncConnection, ep_ids: list[str]) -> list[str]:
        e = t.endpoints.c
        stmt = (
            sa.select(e.id)
            .where(e.id.in_(ep_ids), e.failing_since.is_not(None))
            .order_by(e.id)  # every worker locks in the same order
        )
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(key_share=True)  # see _track_health
        return list(await conn.scalars(stmt))

    async def _auto_disable(
        self, conn: AsyncConnection, ep: Row, since: datetime, now: datetime
    ) -> None:
        reason = f"every delivery failed since {since.isoformat()} (auto-disabled)"
        await conn.execute(
            t.endpoints.update()
            .where(t.endpoints.c.id == ep["id"])
            .values(disabled=True, disabled_reason=reason, disabled_at=now, updated_at=now)
        )
        await self._pause_deliveries(conn, ep["id"], paused=True)
        await self._emit_endpoint_event(
            conn, ENDPOINT_DISABLED, ep, failSince=since.isoformat(), trigger="automatic"
        )

    async def _attempt_event(
        self, conn: AsyncConnection, event_type: str, res: AttemptResult, ep: Row
    ) -> None:
        m = t.messages.c
        msg_event_id = await conn.scalar(sa.select(m.event_id).where(m.id == res.delivery.msg_id))
        await self._emit_endpoint_event(
            conn,
            event_type,
            ep,
            msgId=res.delivery.msg_id,
            msgEventId=msg_event_id,
            lastAttempt={
                "timestamp": res.at.isoformat(),
                "responseStatusCode": res.status_code,
                "response": res.response or res.error or "",
            },
        )


def plain_successes(
    results: Iterable[AttemptResult],
    outcomes: Iterable[tuple[MessageStatus, datetime | None, int]],
) -> bool:
    """Every attempt succeeded and none announces a recovery: the usual batch, in which
    nothing but failing endpoints' clocks can change."""
    return all(
        res.ok and not recovers(res, out[2]) for res, out in zip(results, outcomes, strict=True)
    )


def recovers(res: AttemptResult, count: int) -> bool:
    """A success after the endpoint was announced as failing for this message."""
    return res.ok and res.delivery.trigger is TriggerType.SCHEDULED and count > FAILING_AFTER
