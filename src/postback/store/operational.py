"""Operational webhooks (postback's own events, for the operator) and endpoint health:
failure streaks, auto-disable.

Operational events are ordinary messages of a hidden application whose endpoints the
operator registers under /api/v1/operational-webhook/endpoint, so they are signed, retried
and recorded by the same engine. They are emitted inside the transaction that causes them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback import ids, metrics, reasons
from postback.delivery.scheduler import (
    DEFAULT_POLICY,
    Circuit,
    CircuitView,
    SchedulerPolicy,
    after_attempt,
    classify,
)
from postback.domain import AttemptResult, MessageStatus, encode_json
from postback.store import schema as t
from postback.store.core import OPERATIONAL_APP_ID, StoreCore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
log = logging.getLogger("postback.health")

# Svix sends message.attempt.failing on the fourth failed attempt of a message.
FAILING_AFTER = 4

ENDPOINT_CREATED = "endpoint.created"
ENDPOINT_UPDATED = "endpoint.updated"
ENDPOINT_DELETED = "endpoint.deleted"
ENDPOINT_DISABLED = "endpoint.disabled"
ATTEMPT_EXHAUSTED = "message.attempt.exhausted"
ATTEMPT_FAILING = "message.attempt.failing"
ATTEMPT_RECOVERED = "message.attempt.recovered"
ENDPOINT_CIRCUIT_OPENED = "endpoint.circuit.opened"
ENDPOINT_CIRCUIT_CLOSED = "endpoint.circuit.closed"


class OperationalMixin(StoreCore):
    if TYPE_CHECKING:  # other parts' methods, declared for the type checker only

        async def _insert_message(
            self, conn: AsyncConnection, row: Row, only_endpoint: str | None = None
        ) -> int | None: ...

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
        return await self._insert_message(conn, row) or 0  # no eventId: never None

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
        policy: SchedulerPolicy = DEFAULT_POLICY,
    ) -> None:
        """After a batch of attempts: per-message failing/exhausted/recovered events, each
        endpoint's failure clock and circuit breaker, Retry-After pauses, and auto-disable
        of endpoints failing for too long."""
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
        if plain_successes(
            [res for res, _ in customer], [out for _, out in customer]
        ) and not await self._circuits_not_closed(conn, ep_ids):
            # The usual batch: nothing to announce, nothing to disable. Only endpoints that
            # were failing change, so only those are read and locked (a fan-out batch
            # touches a hundred endpoints; locking each row costs a write on PostgreSQL).
            ep_ids = await self._failing_among(conn, ep_ids)
            if ep_ids:
                await conn.execute(
                    t.endpoints.update()
                    .where(e.id.in_(ep_ids))
                    .values(failing_since=None, circuit_failures=0)
                )
            return
        stmt = (
            sa.select(
                e.id,
                e.app_id,
                e.uid,
                e.disabled,
                e.failing_since,
                e.circuit_state,
                e.circuit_since,
                e.circuit_probe_at,
                e.circuit_failures,
                e.circuit_opens,
                e.paused_until,
            )
            .where(e.id.in_(ep_ids))
            .order_by(e.id)  # every worker locks in the same order
        )
        stmt = self.backend.lock_rows(stmt)  # two workers finishing at once count correctly
        endpoints = {r.id: dict(r._mapping) for r in await conn.execute(stmt)}
        before = {ep_id: _health_columns(ep) for ep_id, ep in endpoints.items()}
        moved: list[tuple[Row, Circuit]] = []
        for res, (status, _next, count) in sorted(customer, key=lambda ro: ro[0].at):
            ep = endpoints.get(res.delivery.endpoint_id)
            if ep is None:
                continue  # deleted while the attempt was in flight
            view, moved_to = after_attempt(_circuit_view(ep), classify(res), now, policy)
            ep.update(
                circuit_state=int(view.state),
                circuit_since=view.since,
                circuit_probe_at=view.probe_at,
                circuit_failures=view.failures,
                circuit_opens=view.opens,
            )
            if moved_to is not None:
                moved.append((ep, moved_to))
            if res.retry_after:
                until = now + timedelta(seconds=res.retry_after)
                if ep["paused_until"] is None or ep["paused_until"] < until:
                    ep["paused_until"] = until
            if res.ok:
                ep["failing_since"] = None
                if recovers(res, count):
                    await self._attempt_event(conn, ATTEMPT_RECOVERED, res, ep)
                continue
            if ep["failing_since"] is None and res.fault is None:
                ep["failing_since"] = now  # the store clock, which tests can move
            if res.delivery.trigger.follows_schedule and count == FAILING_AFTER:
                await self._attempt_event(conn, ATTEMPT_FAILING, res, ep)
            if status is MessageStatus.FAIL:
                await self._attempt_event(conn, ATTEMPT_EXHAUSTED, res, ep)
        for ep_id, ep in endpoints.items():
            after = _health_columns(ep)
            if after != before[ep_id]:
                await conn.execute(t.endpoints.update().where(e.id == ep_id).values(**after))
        for ep, state in moved:
            await self._circuit_event(conn, ep, state)
        if disable_after is None:
            return
        limit = now - timedelta(seconds=disable_after)
        for ep in endpoints.values():
            since = ep["failing_since"]
            if not ep["disabled"] and since is not None and since <= limit:
                await self._auto_disable(conn, ep, since, now)

    async def _circuit_event(self, conn: AsyncConnection, ep: Row, state: Circuit) -> None:
        metrics.circuit_moved(state.text)
        if state is Circuit.OPEN:
            probe = ep["circuit_probe_at"].isoformat()
            _warn(
                ENDPOINT_CIRCUIT_OPENED,
                ep,
                {"code": reasons.FAILED_IN_A_ROW, "failures": ep["circuit_failures"]},
                nextProbeAt=probe,
            )
            await self._emit_endpoint_event(
                conn,
                ENDPOINT_CIRCUIT_OPENED,
                ep,
                failures=ep["circuit_failures"],
                nextProbeAt=probe,
            )
        else:
            _warn(ENDPOINT_CIRCUIT_CLOSED, ep, {"code": reasons.ANSWERED})
            await self._emit_endpoint_event(conn, ENDPOINT_CIRCUIT_CLOSED, ep)

    async def _close_circuits(self, ep_ids: Sequence[str]) -> None:
        """Close the circuits of endpoints a batch of plain successes came back from (the
        fast path records those without reading the breaker)."""
        e = t.endpoints.c
        now = self.clock()
        async with self.engine.begin() as conn:
            stmt = (
                sa.select(e.id, e.app_id, e.uid)
                .where(e.id.in_(sorted(ep_ids)), e.circuit_state != int(Circuit.CLOSED))
                .order_by(e.id)
            )
            stmt = self.backend.lock_rows(stmt)
            for row in (await conn.execute(stmt)).all():
                await conn.execute(
                    t.endpoints.update()
                    .where(e.id == row.id)
                    .values(
                        circuit_state=int(Circuit.CLOSED),
                        circuit_since=now,
                        circuit_probe_at=None,
                        circuit_failures=0,
                        circuit_opens=0,
                    )
                )
                await self._circuit_event(conn, dict(row._mapping), Circuit.CLOSED)

    async def _failing_among(self, conn: AsyncConnection, ep_ids: list[str]) -> list[str]:
        e = t.endpoints.c
        stmt = (
            sa.select(e.id)
            .where(e.id.in_(ep_ids), e.failing_since.is_not(None) | (e.circuit_failures > 0))
            .order_by(e.id)  # every worker locks in the same order
        )
        stmt = self.backend.lock_rows(stmt)
        return list(await conn.scalars(stmt))

    async def _circuits_not_closed(self, conn: AsyncConnection, ep_ids: list[str]) -> bool:
        e = t.endpoints.c
        stmt = sa.select(e.id).where(e.id.in_(ep_ids), e.circuit_state != 0).limit(1)
        return (await conn.scalar(stmt)) is not None

    async def _auto_disable(
        self, conn: AsyncConnection, ep: Row, since: datetime, now: datetime
    ) -> None:
        a = t.attempts.c
        failed = await conn.scalar(
            sa.select(sa.func.count()).where(
                a.endpoint_id == ep["id"], a.created_at >= since, a.status != 0
            )
        )
        reason = reasons.failing_since(since, int(failed or 0))
        _warn(ENDPOINT_DISABLED, ep, reason)
        await conn.execute(
            t.endpoints.update()
            .where(t.endpoints.c.id == ep["id"])
            .values(
                disabled=True,
                disabled_reason=reasons.stored(reason),
                disabled_at=now,
                updated_at=now,
            )
        )
        await self._pause_deliveries(conn, ep["id"], paused=True)
        await self._emit_endpoint_event(
            conn,
            ENDPOINT_DISABLED,
            ep,
            failSince=since.isoformat(),
            trigger="automatic",
            reason=reason,
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


def _warn(event: str, ep: Row, reason: reasons.Reason, **extra: Any) -> None:
    """One warning line an operator can act on: what happened (``event``, the operational
    webhook's type) to which endpoint of which application, and why (fields of their own
    in the JSON log format)."""
    log.warning(
        "endpoint %s (app %s) %s: %s",
        ep["id"],
        ep["app_id"],
        event.removeprefix("endpoint.").replace(".", " "),
        reasons.english(reason) or reason["code"],
        extra={
            "event": event,
            "app_id": ep["app_id"],
            "endpoint_id": ep["id"],
            "reason": reason,
            **extra,
        },
    )


_HEALTH = (
    "failing_since",
    "circuit_state",
    "circuit_since",
    "circuit_probe_at",
    "circuit_failures",
    "circuit_opens",
    "paused_until",
)


def _health_columns(ep: Row) -> Row:
    return {k: ep[k] for k in _HEALTH}


def _circuit_view(ep: Row) -> CircuitView:
    return CircuitView(
        Circuit(ep["circuit_state"]),
        ep["circuit_since"],
        ep["circuit_probe_at"],
        ep["circuit_failures"],
        ep["circuit_opens"],
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
    return res.ok and res.delivery.trigger.follows_schedule and count > FAILING_AFTER
