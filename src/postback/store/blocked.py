"""BlockedKeysMixin: an ordered endpoint's blocked keys (docs/architecture.md, "Ordered
delivery"), for the portal, the endpoint's API output, and the operational webhook
``endpoint.ordering.blocked``.

A key is *blocked* while its head (its first unfinished delivery) has been tried and not
delivered: it is retrying, parked for a late retry, in flight again, or held by an open
circuit. It has been blocked since the head's first attempt. A head not yet tried is not
blocked: it is on its way.

The warning goes out once per head: the housekeeping row ``ordering`` keeps a cursor, the
(blocked-since, delivery id) of the last head announced; a pass announces the heads
blocked since after the cursor and up to ``now - after``, and moves the cursor in the
transaction that emits their events. A restart or another worker therefore never announces
a head twice, and a head that has been blocked for days is announced once, when it crosses
the line. A pass is claimed by one UPDATE of that row, as retention's is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from postback.domain import MessageStatus
from postback.store import schema as t
from postback.store.core import OPERATIONAL_APP_ID, StoreCore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
CHORE = "ordering"
ENDPOINT_ORDERING_BLOCKED = "endpoint.ordering.blocked"
CLAIM_HOLD = 300.0  # a runner that dies frees the chore after this long
ANNOUNCE_MAX = 500  # heads announced per pass; the next pass goes on from the cursor
SHOWN_MAX = 50  # heads blocked too long kept in the row for the dashboard
_d, _a, _e, _h = t.deliveries.c, t.attempts.c, t.endpoints.c, t.housekeeping.c
_UNFINISHED = (int(MessageStatus.PENDING), int(MessageStatus.SENDING))


def _blocked_since() -> sa.ScalarSelect[Any]:
    """When the delivery was first tried (ix_attempts_msg_id_id: one descent)."""
    return (
        sa.select(sa.func.min(_a.created_at))
        .where(_a.msg_id == _d.msg_id, _a.endpoint_id == _d.endpoint_id)
        .scalar_subquery()
    )


def _blocked_heads(since: sa.ScalarSelect[Any]) -> sa.Select[Any]:
    """Unfinished keyed deliveries that were tried and have nothing unfinished before them
    in their key: each blocked key's head. A delivery is tried only as its key's head, so
    the ``attempt_count`` test leaves few rows for the head test's index descent."""
    earlier = t.deliveries.alias("earlier")
    ahead = sa.exists().where(
        earlier.c.endpoint_id == _d.endpoint_id,
        earlier.c.ordering_key == _d.ordering_key,
        earlier.c.status.in_(_UNFINISHED),
        sa.or_(
            earlier.c.seq < _d.seq,
            sa.and_(earlier.c.seq == _d.seq, earlier.c.id < _d.id),
        ),
    )
    return sa.select(
        _d.id,
        _d.msg_id,
        _d.endpoint_id,
        _d.app_id,
        _d.ordering_key,
        _d.status,
        _d.attempt_count,
        sa.func.coalesce(_d.next_attempt_at, _d.wake_at).label("next_attempt_at"),
        since.label("blocked_since"),
    ).where(
        _d.ordering_key.is_not(None),
        _d.status.in_(_UNFINISHED),
        _d.attempt_count > 0,
        ~ahead,
    )


class BlockedKeysMixin(StoreCore):
    if TYPE_CHECKING:  # other parts' methods, declared for the type checker only

        async def _emit_endpoint_event(
            self, conn: AsyncConnection, event_type: str, ep: Row, **extra: Any
        ) -> None: ...

    async def blocked_keys(self, app_id: str, endpoint_id: str, limit: int = 100) -> list[Row]:
        """An endpoint's blocked keys, the longest-blocked first, at most ``limit``: the
        head (delivery, message, status, attempts, next attempt), ``blocked_since``, and
        its last attempt (``last_attempt``: id, status code, response, error, time)."""
        since = _blocked_since()
        async with self.engine.connect() as conn:
            ep = await self._get_endpoint(conn, app_id, endpoint_id)
            stmt = (
                _blocked_heads(since)
                .where(_d.endpoint_id == ep["id"])
                .order_by(since, _d.id)
                .limit(limit)
            )
            heads = [dict(r._mapping) for r in await conn.execute(stmt)]
            last = await self._last_attempts(conn, ep["id"], [h["msg_id"] for h in heads])
        return [h | {"last_attempt": last.get(h["msg_id"])} for h in heads]

    async def blocked_summary(self, endpoint_id: str) -> Row:
        """``count`` of an endpoint's blocked keys and the ``oldest`` one's blocked-since
        (None when none): for the endpoint's API output. Reads the endpoint's tried
        unfinished keyed deliveries through the ordering index, not its backlog."""
        since = _blocked_since()
        heads = _blocked_heads(since).where(_d.endpoint_id == endpoint_id).subquery()
        stmt = sa.select(sa.func.count(), sa.func.min(heads.c.blocked_since))
        async with self.engine.connect() as conn:
            count, oldest = (await conn.execute(stmt)).one()
        return {"count": int(count or 0), "oldest": oldest}

    async def _last_attempts(
        self, conn: AsyncConnection, ep_id: str, msg_ids: list[str]
    ) -> dict[str, Row]:
        if not msg_ids:
            return {}
        newest = (
            sa.select(sa.func.max(_a.id))
            .where(_a.endpoint_id == ep_id, _a.msg_id.in_(msg_ids))
            .group_by(_a.msg_id)
        )
        stmt = sa.select(
            _a.id,
            _a.msg_id,
            _a.status,
            _a.response_status_code,
            _a.response,
            _a.error,
            _a.created_at,
        ).where(_a.id.in_(newest))
        return {r.msg_id: dict(r._mapping) for r in await conn.execute(stmt)}

    # ---- the operational webhook ---------------------------------------------------------

    async def announce_blocked_keys(self, after_seconds: float, *, every: float = 60.0) -> int:
        """Send ``endpoint.ordering.blocked`` once for each head blocked longer than
        ``after_seconds``, if this process wins the chore (it is not due again for
        ``every`` seconds). Returns how many were announced (0 also when another process
        has the chore). Disabled endpoints are left out: ``endpoint.disabled`` said why."""
        now = self.clock()
        cursor = await self._claim_ordering_chore(now)
        if cursor is None:
            return 0
        line = now - timedelta(seconds=after_seconds)
        announced = 0
        try:
            async with self.engine.begin() as conn:
                cursor, announced = await self._announce(conn, cursor, line)
                shown = await self._still_blocked(conn, line)
                result = {"cursor": cursor, "checked_at": now.isoformat(), "blocked": shown}
                await conn.execute(
                    t.housekeeping.update()
                    .where(_h.name == CHORE)
                    .values(due_at=now + timedelta(seconds=every), last_run_at=now, result=result)
                )
        except Exception:
            async with self.engine.begin() as conn:  # free the chore for the next round
                await conn.execute(
                    t.housekeeping.update().where(_h.name == CHORE).values(due_at=now)
                )
            raise
        return announced

    async def blocked_too_long(self) -> Row | None:
        """What the last pass found: ``checked_at`` and ``blocked``, the heads blocked past
        the setting (at most 50, the longest-blocked first). None: no pass has run."""
        stmt = sa.select(_h.result).where(_h.name == CHORE)
        async with self.engine.connect() as conn:
            result = await conn.scalar(stmt)
        return result or None

    async def _announce(
        self, conn: AsyncConnection, cursor: Row, line: datetime
    ) -> tuple[Row, int]:
        since = _blocked_since()
        stmt = (
            _blocked_heads(since)
            .add_columns(_e.uid.label("endpoint_uid"))
            .join(t.endpoints, _e.id == _d.endpoint_id)
            .where(
                _e.disabled.is_(False),
                _d.app_id != OPERATIONAL_APP_ID,
                since <= line,
            )
            .order_by(since, _d.id)
            .limit(ANNOUNCE_MAX)
        )
        if cursor.get("since"):
            after = datetime.fromisoformat(cursor["since"])
            stmt = stmt.where(sa.or_(since > after, sa.and_(since == after, _d.id > cursor["id"])))
        heads = list(await conn.execute(stmt))
        for head in heads:
            ep = {"id": head.endpoint_id, "app_id": head.app_id, "uid": head.endpoint_uid}
            await self._emit_endpoint_event(
                conn,
                ENDPOINT_ORDERING_BLOCKED,
                ep,
                orderingKey=head.ordering_key or None,
                msgId=head.msg_id,
                attempts=head.attempt_count,
                blockedSince=head.blocked_since.isoformat(),
            )
        if heads:
            cursor = {"since": heads[-1].blocked_since.isoformat(), "id": heads[-1].id}
        elif not cursor.get("since"):
            # Nothing blocked that long yet: later heads cross the line after it.
            cursor = {"since": line.isoformat(), "id": ""}
        return cursor, len(heads)

    async def _still_blocked(self, conn: AsyncConnection, line: datetime) -> list[Row]:
        since = _blocked_since()
        stmt = (
            _blocked_heads(since)
            .add_columns(_e.url)
            .join(t.endpoints, _e.id == _d.endpoint_id)
            .where(_e.disabled.is_(False), _d.app_id != OPERATIONAL_APP_ID, since <= line)
            .order_by(since, _d.id)
            .limit(SHOWN_MAX)
        )
        return [
            {
                "app_id": r.app_id,
                "endpoint_id": r.endpoint_id,
                "url": r.url,
                "ordering_key": r.ordering_key,
                "msg_id": r.msg_id,
                "attempts": r.attempt_count,
                "blocked_since": r.blocked_since.isoformat(),
            }
            for r in await conn.execute(stmt)
        ]

    async def _claim_ordering_chore(self, now: datetime) -> Row | None:
        """Take the chore if it is due (one UPDATE, which one process wins); the row is made
        by the first process that looks for it. Returns the cursor (None: not ours)."""
        hold = now + timedelta(seconds=CLAIM_HOLD)
        due = sa.or_(_h.due_at.is_(None), _h.due_at <= now)
        for _ in range(2):
            async with self.engine.begin() as conn:
                took = await conn.execute(
                    t.housekeeping.update().where(_h.name == CHORE, due).values(due_at=hold)
                )
                if took.rowcount == 1:
                    result = await conn.scalar(sa.select(_h.result).where(_h.name == CHORE))
                    return dict((result or {}).get("cursor") or {})
                exists = await conn.scalar(sa.select(_h.name).where(_h.name == CHORE))
            if exists is not None:
                return None
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(t.housekeeping.insert().values(name=CHORE))
            except IntegrityError:
                pass  # another process made it first
        return None
