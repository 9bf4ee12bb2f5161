"""Store: every query postback needs, over either database (the differences are behind
store/backend.py). This module: the Store's parts put together, and the resources
(applications, event types, endpoints)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postback import ids, reasons
from postback.domain import MessageStatus
from postback.store import heads
from postback.store import schema as t
from postback.store.blocked import BlockedKeysMixin
from postback.store.credentials import CredentialsMixin, credential_columns
from postback.store.dashboard import DashboardMixin
from postback.store.engine import create_engine
from postback.store.errors import Conflict, NotFound
from postback.store.events import EventsMixin
from postback.store.history import HistoryMixin
from postback.store.idempotency import IdempotencyMixin
from postback.store.liveness import LivenessMixin
from postback.store.messages import MessagesMixin
from postback.store.metrics_queries import MetricsQueriesMixin
from postback.store.operational import (
    ENDPOINT_CREATED,
    ENDPOINT_DELETED,
    ENDPOINT_DISABLED,
    ENDPOINT_UPDATED,
    OPERATIONAL_APP_ID,
    OperationalMixin,
)
from postback.store.ordering import OrderingMixin
from postback.store.pages import Page, PageOut, page_out, paged
from postback.store.queue import QueueMixin
from postback.store.ratelimit import RateLimitMixin
from postback.store.retention import RetentionMixin
from postback.store.sessions import SessionsMixin
from postback.store.tasks import TasksMixin
from postback.store.tokens import TokensMixin, hash_token
from postback.store.usage import UsageMixin

Row = dict[str, Any]


class Store(
    MessagesMixin,
    TokensMixin,
    SessionsMixin,
    IdempotencyMixin,
    OperationalMixin,
    TasksMixin,
    UsageMixin,
    RateLimitMixin,
    QueueMixin,
    HistoryMixin,
    LivenessMixin,
    EventsMixin,
    DashboardMixin,
    MetricsQueriesMixin,
    CredentialsMixin,
    RetentionMixin,
    OrderingMixin,
    BlockedKeysMixin,
):
    """The one interface to the database; api/, web/, cli and the worker call only this.

    Its parts share ``StoreCore`` (core.py: the engine, the database's backend, the clock,
    the lookups); each defines its own methods only, so their order here is free."""

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 20, **kwargs: Any) -> Store:
        return cls(create_engine(url, pool_size=pool_size), **kwargs)

    # ---- applications ----------------------------------------------------------------

    async def create_app(self, values: Row) -> Row:
        now = self.clock()
        row = {
            "id": ids.new_id(ids.APPLICATION),
            "uid": values.get("uid"),
            "name": values["name"],
            "throttle_rate": values.get("throttle_rate"),
            "metadata": values.get("metadata") or {},
            "retention_period": values.get("retention_period"),
            "created_at": now,
            "updated_at": now,
        }
        async with self.engine.begin() as conn:
            await self._insert(conn, t.applications, row, "uid")
        return row

    async def get_app(self, id_or_uid: str) -> Row:
        async with self.engine.connect() as conn:
            return await self._get_app(conn, id_or_uid)

    async def list_apps(self, page: Page) -> PageOut:
        visible = sa.select(t.applications).where(t.applications.c.id != OPERATIONAL_APP_ID)
        stmt = paged(visible, t.applications.c.id, page)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return page_out(rows, "id", page)

    async def update_app(self, id_or_uid: str, values: Row) -> Row:
        values = _not_null(values, "metadata")
        async with self.engine.begin() as conn:
            app = await self._get_app(conn, id_or_uid)
            app.update(values, updated_at=self.clock())
            stmt = t.applications.update().where(t.applications.c.id == app["id"])
            await self._update(conn, stmt, values | {"updated_at": app["updated_at"]}, "uid")
        return app

    async def delete_app(self, id_or_uid: str) -> None:
        """Remove the application and all of its data: endpoints, messages, deliveries,
        attempts, portal tokens and their sessions go by their foreign keys' cascades (on
        both databases); its background tasks, which have none, here."""
        async with self.engine.begin() as conn:
            app = await self._get_app(conn, id_or_uid)
            tasks = t.background_tasks
            await conn.execute(tasks.delete().where(tasks.c.app_id == app["id"]))
            await conn.execute(t.applications.delete().where(t.applications.c.id == app["id"]))

    # ---- event types -----------------------------------------------------------------

    async def create_event_type(self, values: Row) -> Row:
        now = self.clock()
        row = {
            "name": values["name"],
            "description": values.get("description") or "",
            "descriptions": values.get("descriptions") or None,
            "archived": bool(values.get("archived")),
            "deprecated": bool(values.get("deprecated")),
            "schemas": values.get("schemas"),
            "group_name": values.get("group_name"),
            "feature_flags": values.get("feature_flags"),
            "validate_payloads": values.get("validate_payloads"),
            "product_path": values.get("product_path"),
            "ordering_key_path": values.get("ordering_key_path"),
            "created_at": now,
            "updated_at": now,
        }
        async with self.engine.begin() as conn:
            await self._insert(conn, t.event_types, row, "name")
        return row

    async def get_event_type(self, name: str) -> Row:
        async with self.engine.connect() as conn:
            return await self._get_event_type(conn, name)

    async def _get_event_type(self, conn: AsyncConnection, name: str) -> Row:
        stmt = sa.select(t.event_types).where(t.event_types.c.name == name)
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"event type {name!r} not found")
        return dict(row._mapping)

    async def list_event_types(self, page: Page, *, include_archived: bool = False) -> PageOut:
        stmt = sa.select(t.event_types)
        if not include_archived:
            stmt = stmt.where(t.event_types.c.archived.is_(False))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(paged(stmt, t.event_types.c.name, page))).all()
        return page_out(rows, "name", page)

    async def event_type_rules(self, *, flagged_only: bool) -> list[Row]:
        """What ingest needs of the live catalog: every event type's name, product path and
        ordering key path,
        and the schemas payloads are validated against (``flagged_only``: only those of the
        event types that ask for validation themselves)."""
        c = t.event_types.c
        # Every live event type (its name and product path: the catalog), with its schemas
        # only where payloads are validated.
        validated = c.validate_payloads
        wanted = validated.is_(True) if flagged_only else validated.is_not(False)
        schemas = sa.case((wanted, c.schemas), else_=sa.null()).label("schemas")
        stmt = sa.select(
            c.name, schemas, c.validate_payloads, c.product_path, c.ordering_key_path, c.updated_at
        ).where(c.archived.is_(False))
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]

    async def update_event_type(self, name: str, values: Row) -> Row:
        async with self.engine.begin() as conn:
            row = await self._get_event_type(conn, name)
            row.update(values, updated_at=self.clock())
            stmt = t.event_types.update().where(t.event_types.c.name == name)
            await conn.execute(stmt.values(**values, updated_at=row["updated_at"]))
        return row

    async def delete_event_type(self, name: str, *, expunge: bool = False) -> None:
        async with self.engine.begin() as conn:
            await self._get_event_type(conn, name)
            where = t.event_types.c.name == name
            if expunge:
                await conn.execute(t.event_types.delete().where(where))
            else:
                values = {"archived": True, "updated_at": self.clock()}
                await conn.execute(t.event_types.update().where(where).values(**values))

    # ---- endpoints -------------------------------------------------------------------

    async def create_endpoint(self, app_id: str, values: Row) -> Row:
        now = self.clock()
        row = {
            "id": ids.new_id(ids.ENDPOINT),
            "app_id": app_id,
            "uid": values.get("uid"),
            "url": values["url"],
            "description": values.get("description") or "",
            "throttle_rate": values.get("throttle_rate"),
            "max_in_flight": values.get("max_in_flight"),
            "ordered": bool(values.get("ordered")),
            "disabled": bool(values.get("disabled")),
            "event_types": values.get("event_types") or None,
            "channels": values.get("channels") or None,
            "product": values.get("product") or None,
            "metadata": values.get("metadata") or {},
            "headers": values.get("headers") or {},
            "payload_filter": values.get("payload_filter") or None,
            "projection": values.get("projection") or None,
            "secret": values["secret"],
            "created_at": now,
            "updated_at": now,
        }
        row |= credential_columns(self._seal, row["id"], values)
        sealed = row | {"secret": self._seal(row["secret"], row["id"])}
        async with self.engine.begin() as conn:
            await self._insert(conn, t.endpoints, sealed, "uid")
            await self._emit_endpoint_event(conn, ENDPOINT_CREATED, row)
        return row

    async def get_endpoint(self, app_id: str, id_or_uid: str) -> Row:
        async with self.engine.connect() as conn:
            return await self._get_endpoint(conn, app_id, id_or_uid)

    async def list_endpoints(self, app_id: str, page: Page) -> PageOut:
        stmt = sa.select(t.endpoints).where(t.endpoints.c.app_id == app_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(paged(stmt, t.endpoints.c.id, page))).all()
        return page_out(rows, "id", page)

    async def count_endpoints(self, app_id: str) -> int:
        stmt = sa.select(sa.func.count()).where(t.endpoints.c.app_id == app_id)
        async with self.engine.connect() as conn:
            return int(await conn.scalar(stmt) or 0)

    async def update_endpoint(self, app_id: str, id_or_uid: str, values: Row) -> Row:
        values = _not_null(values, "metadata", "headers")
        async with self.engine.begin() as conn:
            ep = await self._get_endpoint(conn, app_id, id_or_uid)
            was_disabled, was_ordered = ep["disabled"], ep["ordered"]
            credentials = {k: values.pop(k) for k in ("mtls", "oauth") if k in values}
            values |= credential_columns(self._seal, ep["id"], credentials)
            ep.update(values, updated_at=self.clock())
            stmt = t.endpoints.update().where(t.endpoints.c.id == ep["id"])
            written = values | {"updated_at": ep["updated_at"]}
            if "secret" in values:
                written["secret"] = self._seal(values["secret"], ep["id"])
            await self._update(conn, stmt, written, "uid")
            if ep["ordered"] != was_ordered:
                await self._key_deliveries(conn, ep["id"], ordered=ep["ordered"])
            if ep["disabled"] != was_disabled:
                await self._pause_deliveries(conn, ep["id"], paused=ep["disabled"])
                if not ep["disabled"]:
                    # Re-enabled: its failure clock and the reason it stopped are history.
                    fresh = {"failing_since": None, "disabled_reason": None, "disabled_at": None}
                    await conn.execute(stmt.values(**fresh))
                    ep.update(fresh)
                    await self._announce_work(conn)
                else:
                    why = reasons.stored(reasons.by_request())
                    fresh = {"disabled_reason": why, "disabled_at": self.clock()}
                    await conn.execute(stmt.values(**fresh))
                    ep.update(fresh)
                    await self._emit_endpoint_event(conn, ENDPOINT_DISABLED, ep, trigger="manual")
            await self._emit_endpoint_event(conn, ENDPOINT_UPDATED, ep)
        if not ep["disabled"] and was_disabled:
            self._notify_work()
        return ep

    async def rotate_secret(
        self, app_id: str, id_or_uid: str, new_secret: str, grace_seconds: float
    ) -> None:
        """Replace the signing secret. The old one keeps signing beside it for
        ``grace_seconds``, so receivers can switch without rejecting a delivery."""
        now = self.clock()
        async with self.engine.begin() as conn:
            ep = await self._get_endpoint(conn, app_id, id_or_uid)
            kept = [p for p in ep["previous_secrets"] or [] if _until(p) > now]
            if grace_seconds > 0:
                until = (now + timedelta(seconds=grace_seconds)).isoformat()
                kept.insert(0, {"secret": self._seal(ep["secret"], ep["id"]), "until": until})
            await conn.execute(
                t.endpoints.update()
                .where(t.endpoints.c.id == ep["id"])
                .values(
                    secret=self._seal(new_secret, ep["id"]),
                    previous_secrets=kept or None,
                    updated_at=now,
                )
            )

    async def delete_endpoint(self, app_id: str, id_or_uid: str) -> None:
        async with self.engine.begin() as conn:
            ep = await self._get_endpoint(conn, app_id, id_or_uid)
            await conn.execute(t.endpoints.delete().where(t.endpoints.c.id == ep["id"]))
            await self._emit_endpoint_event(conn, ENDPOINT_DELETED, ep)

    # ---- helpers ---------------------------------------------------------------------

    async def _key_deliveries(self, conn: AsyncConnection, ep_id: str, *, ordered: bool) -> None:
        """An endpoint made ordered: its unfinished deliveries join their messages' keys,
        in message order; made unordered: they leave them."""
        d, m = t.deliveries.c, t.messages.c
        unfinished = t.deliveries.update().where(
            d.endpoint_id == ep_id, d.status.in_([MessageStatus.PENDING, MessageStatus.SENDING])
        )
        if not ordered:
            await conn.execute(unfinished.values(ordering_key=None, head=False))
            return
        of_message = sa.select(sa.func.coalesce(m.ordering_key, "")).where(m.id == d.msg_id)
        await conn.execute(
            unfinished.values(
                ordering_key=of_message.scalar_subquery(),
                seq=sa.func.coalesce(
                    d.seq, sa.select(m.seq).where(m.id == d.msg_id).scalar_subquery()
                ),
            )
        )
        await heads.reseat(conn, ep_id)

    async def _pause_deliveries(self, conn: AsyncConnection, ep_id: str, *, paused: bool) -> None:
        """Disabling an endpoint parks its pending deliveries; enabling makes them due now."""
        c = t.deliveries.c
        stmt = t.deliveries.update().where(
            c.endpoint_id == ep_id, c.status == MessageStatus.PENDING
        )
        if paused:  # parked ones too: enabling makes every paused delivery due at once
            stmt = stmt.where(c.next_attempt_at.is_not(None) | c.wake_at.is_not(None)).values(
                next_attempt_at=None, wake_at=None
            )
        else:
            stmt = stmt.where(c.next_attempt_at.is_(None), c.wake_at.is_(None)).values(
                next_attempt_at=self.clock()
            )
        await conn.execute(stmt)
        if not paused:
            # Enabled again: whoever enabled it expects it to be tried now, so the breaker
            # and any Retry-After pause start afresh.
            e = t.endpoints.c
            await conn.execute(
                t.endpoints.update()
                .where(e.id == ep_id)
                .values(
                    circuit_state=0,
                    circuit_since=None,
                    circuit_probe_at=None,
                    circuit_failures=0,
                    circuit_opens=0,
                    paused_until=None,
                )
            )


def _not_null(values: Row, *maps: str) -> Row:
    """A JSON map set to null is stored empty: the wire always shows an object."""
    return values | {k: {} for k in maps if k in values and values[k] is None}


def _until(previous: dict[str, str]) -> datetime:
    return datetime.fromisoformat(previous["until"])


__all__ = ["Conflict", "NotFound", "Page", "PageOut", "Store", "hash_token"]
