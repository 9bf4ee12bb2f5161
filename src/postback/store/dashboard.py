"""Read-only queries for the web UI: endpoint health, the message log with delivery
status, the operator's overview (applications, disabled endpoints, open circuits,
throughput)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback import ids
from postback.delivery.scheduler import Circuit
from postback.domain import MessageStatus, decode_json
from postback.store import schema as t
from postback.store.core import StoreCore
from postback.store.operational import OPERATIONAL_APP_ID
from postback.store.pages import Page, PageOut, page_out, paged

if TYPE_CHECKING:
    pass

Row = dict[str, Any]
ID_CLOCK_MARGIN = timedelta(minutes=5)
_a, _d, _e, _m, _apps = (
    t.attempts.c,
    t.deliveries.c,
    t.endpoints.c,
    t.messages.c,
    t.applications.c,
)


def _latest_attempt(column: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
    # By id (time-sortable) so the (endpoint_id, id) index answers it from its end.
    return (
        sa.select(column)
        .where(_a.endpoint_id == _e.id)
        .order_by(_a.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _fail_streak() -> sa.ScalarSelect[Any]:
    """Failed attempts since the endpoint's last success: the last success is found from
    the end of the (endpoint_id, id) index and only the attempts after it are counted."""
    ok = t.attempts.alias("ok_attempts")  # its own alias, or it would correlate to ``failed``
    last_ok = (
        sa.select(ok.c.id)
        .where(ok.c.endpoint_id == _e.id, ok.c.status == MessageStatus.SUCCESS)
        .order_by(ok.c.id.desc())
        .limit(1)
        .correlate(t.endpoints)  # the outer query's endpoint, evaluated once per endpoint
        .scalar_subquery()
    )
    failed = sa.select(sa.func.count()).where(
        _a.endpoint_id == _e.id, _a.status == MessageStatus.FAIL
    )
    return failed.where(_a.id > sa.func.coalesce(last_ok, "")).scalar_subquery()


def _count_deliveries(*statuses: MessageStatus) -> sa.ScalarSelect[Any]:
    return (
        sa.select(sa.func.count())
        .where(_d.msg_id == _m.id, _d.status.in_([int(s) for s in statuses]))
        .scalar_subquery()
    )


class DashboardMixin(StoreCore):
    async def endpoint_health(self, app_id: str) -> list[Row]:
        """Every endpoint of an application with its last attempt and failure streak."""
        stmt = (
            sa.select(
                _e.id,
                _e.uid,
                _e.url,
                _e.description,
                _e.disabled,
                _e.disabled_reason,
                _e.disabled_at,
                _e.failing_since,
                _e.event_types,
                _e.channels,
                _e.product,
                _e.payload_filter,
                _e.circuit_state,
                _e.paused_until,
                _latest_attempt(_a.response_status_code).label("last_status_code"),
                _latest_attempt(_a.status).label("last_status"),
                _latest_attempt(_a.created_at).label("last_attempt_at"),
                _fail_streak().label("fail_streak"),
            )
            .where(_e.app_id == app_id)
            .order_by(_e.id)
        )
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]

    async def message_log(
        self,
        app_id: str,
        page: Page,
        *,
        event_type: str | None = None,
        status: MessageStatus | None = None,
        after: datetime | None = None,
        before: datetime | None = None,
        ref: str | None = None,
    ) -> PageOut:
        """Messages newest first, each with how many of its deliveries succeeded, are
        still pending and failed; ``status`` keeps messages with a delivery in it, ``ref``
        the message whose id or eventId it is (exactly)."""
        stmt = sa.select(
            _m.id,
            _m.event_type,
            _m.event_id,
            _m.channels,
            _m.created_at,
            _count_deliveries(MessageStatus.SUCCESS).label("succeeded"),
            _count_deliveries(MessageStatus.PENDING, MessageStatus.SENDING).label("pending"),
            _count_deliveries(MessageStatus.FAIL).label("failed"),
        ).where(_m.app_id == app_id)
        if event_type:
            stmt = stmt.where(_m.event_type == event_type)
        if ref:
            # (app_id, id) and the eventIds are both indexed: at most two rows match.
            stmt = stmt.where(sa.or_(_m.id == ref, self.backend.event_id_is(app_id, ref)))
        if status is not None:
            wanted = [int(status)]
            if status is MessageStatus.PENDING:
                wanted.append(int(MessageStatus.SENDING))
            stmt = stmt.where(sa.exists().where(_d.msg_id == _m.id, _d.status.in_(wanted)))
        # Ids sort by creation time, so the date bounds are id bounds on (app_id, id).
        if after:
            stmt = stmt.where(_m.id >= ids.floor_id(ids.MESSAGE, _ms(after)))
        if before:
            stmt = stmt.where(_m.id < ids.floor_id(ids.MESSAGE, _ms(before)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(paged(stmt, _m.id, page))).all()
        return page_out(rows, "id", page)

    async def apps_overview(self, limit: int = 200) -> list[Row]:
        """Applications with their endpoint counts: all, disabled, currently failing."""

        def count(*cond: Any) -> sa.ScalarSelect[Any]:
            return sa.select(sa.func.count()).where(_e.app_id == _apps.id, *cond).scalar_subquery()

        stmt = (
            sa.select(
                _apps.id,
                _apps.uid,
                _apps.name,
                _apps.created_at,
                count().label("endpoints"),
                count(_e.disabled.is_(True)).label("disabled"),
                count(_e.disabled.is_(False), _e.failing_since.is_not(None)).label("failing"),
            )
            .where(_apps.id != OPERATIONAL_APP_ID)
            .order_by(_apps.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]

    async def disabled_endpoints(self, limit: int = 100) -> list[Row]:
        stmt = (
            sa.select(
                _e.id,
                _e.url,
                _e.app_id,
                _e.disabled_reason,
                _e.disabled_at,
                _e.event_types,
                _e.channels,
                _e.product,
                _e.payload_filter,
                _e.projection,
                _apps.name.label("app_name"),
            )
            .join(t.applications, _apps.id == _e.app_id)
            .where(_e.disabled.is_(True), _e.app_id != OPERATIONAL_APP_ID)
            .order_by(_e.disabled_at.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]

    async def open_circuits(self, limit: int = 100) -> list[Row]:
        """Enabled endpoints whose circuit is open or half-open, the longest-open first (a
        disabled endpoint's breaker is frozen: it is in the disabled list instead)."""
        stmt = (
            sa.select(
                _e.id,
                _e.url,
                _e.app_id,
                _e.circuit_state,
                _e.circuit_since,
                _e.circuit_probe_at,
                _e.circuit_failures,
                _apps.name.label("app_name"),
            )
            .join(t.applications, _apps.id == _e.app_id)
            .where(
                _e.circuit_state != int(Circuit.CLOSED),
                _e.disabled.is_(False),
                _e.app_id != OPERATIONAL_APP_ID,
            )
            .order_by(_e.circuit_since, _e.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]

    async def find_messages(self, ref: str, limit: int = 50) -> list[Row]:
        """Messages across every application whose id or eventId is ``ref``."""
        columns = (
            _m.id,
            _m.app_id,
            _m.event_type,
            _m.event_id,
            _m.created_at,
            _apps.name.label("app_name"),
        )
        visible = _m.app_id != OPERATIONAL_APP_ID
        # Two lookups, each on an index: the primary key, and the eventIds probed once per
        # application (an OR of the two, or eventId alone, would scan every message).
        every_app = sa.select(_apps.id).scalar_subquery()
        lookups = (
            (_m.id == ref, visible),
            (self.backend.event_id_is(every_app, ref), visible),
        )
        joined = sa.select(*columns).join(t.applications, _apps.id == _m.app_id)
        found: dict[str, Row] = {}
        async with self.engine.connect() as conn:
            for where in lookups:
                stmt = joined.where(*where)
                for r in await conn.execute(stmt.order_by(_m.id.desc()).limit(limit)):
                    found[r.id] = dict(r._mapping)
        return sorted(found.values(), key=lambda r: r["id"], reverse=True)[:limit]

    async def attempt_counts(
        self, since: datetime, slot_seconds: int
    ) -> dict[int, tuple[int, int]]:
        """Attempts recorded at or after ``since`` (operational webhooks left out), counted
        per slot of ``slot_seconds`` since the epoch: ``{slot: (succeeded, failed)}``."""
        epoch = self.backend.epoch_seconds(_a.created_at)
        slot = sa.cast(sa.func.floor(epoch / slot_seconds), sa.Integer)
        stmt = (
            sa.select(
                slot.label("slot"),
                sa.func.count().filter(_a.status == MessageStatus.SUCCESS).label("ok"),
                sa.func.count().filter(_a.status != MessageStatus.SUCCESS).label("failed"),
            )
            .where(
                # Ids sort by time: the id bound is a primary-key range, the time the exact
                # edge (an id is made when its attempt is recorded, just after it was sent).
                _a.id >= ids.floor_id(ids.ATTEMPT, _ms(since - ID_CLOCK_MARGIN)),
                _a.created_at >= since,
                _a.app_id != OPERATIONAL_APP_ID,
            )
            .group_by(slot)
        )
        async with self.engine.connect() as conn:
            return {r.slot: (r.ok, r.failed) for r in await conn.execute(stmt)}

    async def operational_overview(self, limit: int = 20) -> tuple[list[Row], list[Row]]:
        """The operator's operational-webhook endpoints, and the latest operational events
        (endpoint disabled, circuit opened, ...) with what each one said."""
        m = t.messages.c
        endpoints = (
            sa.select(_e.id, _e.url, _e.event_types, _e.disabled)
            .where(_e.app_id == OPERATIONAL_APP_ID)
            .order_by(_e.id)
        )
        events = (
            sa.select(m.id, m.event_type, m.payload, m.created_at)
            .where(m.app_id == OPERATIONAL_APP_ID)
            .order_by(m.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            found = [dict(r._mapping) for r in await conn.execute(endpoints)]
            recent = [dict(r._mapping) for r in await conn.execute(events)]
        for row in recent:
            raw = row.pop("payload")
            body = decode_json(raw) if raw else {}
            row["data"] = body.get("data") or {} if isinstance(body, dict) else {}
        return found, recent


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
