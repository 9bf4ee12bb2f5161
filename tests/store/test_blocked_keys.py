"""An ordered endpoint's blocked keys in the store, on SQLite and PostgreSQL
(store/blocked.py): a key is blocked once its head was tried and not delivered, since that
first attempt; the listing carries the head's last answer, the summary counts the keys, and
the operational webhook ``endpoint.ordering.blocked`` is queued once per head that stays
blocked past the setting, however many passes run."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import sqlalchemy as sa

from postback.domain import AttemptResult, ClaimedDelivery, RetrySchedule, utcnow
from postback.store import schema as t
from postback.store.blocked import ENDPOINT_ORDERING_BLOCKED
from postback.store.core import OPERATIONAL_APP_ID
from postback.store.store import Store
from tests.support.ordering import ordered_endpoint

NOW = utcnow().replace(microsecond=0)
SCHEDULE = RetrySchedule((600, 600), jitter=0)  # retries ten minutes apart


async def _send(store: Store, app_id: str, key: str, n: int) -> str:
    values = {"event_type": "invoice.paid", "payload": orjson.dumps({"n": n}), "ordering_key": key}
    msg, _ = await store.create_message(app_id, values)
    return msg["id"]


async def _fail_heads(store: Store, code: int = 503) -> list[ClaimedDelivery]:
    claims = await store.claim_due_deliveries(50, 30)
    await store.record_attempts(
        [AttemptResult(c, store.clock(), code, f"down {code}", 1) for c in claims], SCHEDULE
    )
    return claims


async def _announced(store: Store) -> list[dict]:
    m = t.messages.c
    stmt = (
        sa.select(m.payload)
        .where(m.app_id == OPERATIONAL_APP_ID, m.event_type == ENDPOINT_ORDERING_BLOCKED)
        .order_by(m.id)
    )
    async with store.engine.connect() as conn:
        return [orjson.loads(p)["data"] for p in await conn.scalars(stmt)]


async def test_a_tried_head_blocks_its_key_since_its_first_attempt(
    store: Store, clock: list[datetime]
) -> None:
    app_id, ep_id = await ordered_endpoint(store)
    a1 = await _send(store, app_id, "A", 1)
    await _send(store, app_id, "A", 2)
    assert await store.blocked_keys(app_id, ep_id) == []  # not tried yet: on its way
    claims = await store.claim_due_deliveries(50, 30)
    assert [c.msg_id for c in claims] == [a1]
    assert await store.blocked_summary(ep_id) == {"count": 0, "oldest": None}  # in flight
    await store.record_attempts([AttemptResult(claims[0], NOW, 500, "first", 1)], SCHEDULE)
    b1 = await _send(store, app_id, "B", 1)
    clock[0] = NOW + timedelta(seconds=5)
    await _fail_heads(store, 503)  # B's head fails later than A's
    clock[0] = NOW + timedelta(seconds=700)
    await store.wake_parked()  # the retry was parked: ten minutes ahead
    await _fail_heads(store, 502)  # A's head fails again at its retry
    (a, b) = await store.blocked_keys(app_id, ep_id)
    assert (a["ordering_key"], a["msg_id"], a["attempt_count"]) == ("A", a1, 2)
    assert a["blocked_since"] == NOW  # its first attempt, not its last
    assert (a["last_attempt"]["response_status_code"], a["last_attempt"]["response"]) == (
        502,
        "down 502",
    )
    assert (b["msg_id"], b["blocked_since"]) == (b1, NOW + timedelta(seconds=5))
    assert await store.blocked_summary(ep_id) == {"count": 2, "oldest": NOW}
    await store.skip_head(app_id, ep_id, "A", "operator")
    assert [h["ordering_key"] for h in await store.blocked_keys(app_id, ep_id)] == ["B"]


async def test_a_head_blocked_past_the_setting_is_announced_once(
    store: Store, clock: list[datetime]
) -> None:
    app_id, ep_id = await ordered_endpoint(store)
    a1 = await _send(store, app_id, "A", 1)
    await _fail_heads(store)
    assert await store.announce_blocked_keys(60, every=0) == 0  # blocked for 0 s
    clock[0] = NOW + timedelta(seconds=30)
    b1 = await _send(store, app_id, "B", 1)
    await _fail_heads(store)
    clock[0] = NOW + timedelta(seconds=61)
    assert await store.announce_blocked_keys(60, every=0) == 1  # A crossed the line
    clock[0] = NOW + timedelta(seconds=62)
    assert await store.announce_blocked_keys(60, every=0) == 0  # not again
    clock[0] = NOW + timedelta(seconds=200)
    assert await store.announce_blocked_keys(60, every=0) == 1  # B now; A not again
    assert await store.announce_blocked_keys(60, every=0) == 0
    sent = await _announced(store)
    assert [(e["orderingKey"], e["msgId"], e["endpointId"]) for e in sent] == [
        ("A", a1, ep_id),
        ("B", b1, ep_id),
    ]
    assert sent[0]["appId"] == app_id
    assert datetime.fromisoformat(sent[0]["blockedSince"]) == NOW
    shown = await store.blocked_too_long()
    assert shown is not None and [b["msg_id"] for b in shown["blocked"]] == [a1, b1]


async def test_the_chore_runs_in_one_process_at_a_time(store: Store, clock: list[datetime]) -> None:
    app_id, _ = await ordered_endpoint(store)
    await _send(store, app_id, "A", 1)
    await _fail_heads(store)
    clock[0] = NOW + timedelta(seconds=120)
    assert await store.announce_blocked_keys(60, every=60) == 1
    clock[0] = NOW + timedelta(seconds=150)
    await _send(store, app_id, "B", 1)
    assert await store.announce_blocked_keys(60, every=60) == 0  # not due for a minute
    assert len(await _announced(store)) == 1
