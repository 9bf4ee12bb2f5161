"""The web UI's read-only store queries, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from postback.domain import AttemptResult, ClaimedDelivery, MessageStatus, RetrySchedule, utcnow
from postback.signing import generate_secret
from postback.store.pages import Page
from postback.store.store import Store

SCHEDULE = RetrySchedule((60.0,))  # a failure waits a minute: nothing is retried mid-test


async def _endpoint(store: Store, app_id: str, path: str) -> dict:
    values = {"url": f"http://127.0.0.1:9/{path}", "secret": generate_secret()}
    return await store.create_endpoint(app_id, values)


async def _send(store: Store, app_id: str, event_type: str, codes: dict[str, int]) -> str:
    """One message, delivered once to each endpoint with the status code given for it."""
    row, _ = await store.create_message(app_id, {"event_type": event_type, "payload": b"{}"})
    claims: list[ClaimedDelivery] = await store.claim_due_deliveries(100, 30)
    results = [
        AttemptResult(
            delivery=c, at=utcnow(), status_code=codes[c.endpoint_id], response="", duration_ms=1
        )
        for c in claims
    ]
    await store.record_attempts(results, SCHEDULE)
    return row["id"]


async def test_endpoint_health_shows_last_status_and_failure_streak(store: Store) -> None:
    app = await store.create_app({"name": "health"})
    good, bad = await _endpoint(store, app["id"], "good"), await _endpoint(store, app["id"], "bad")
    codes = {good["id"]: 200, bad["id"]: 200}
    await _send(store, app["id"], "a.b", codes)
    codes[bad["id"]] = 503
    await _send(store, app["id"], "a.b", codes)
    await _send(store, app["id"], "a.b", codes)
    rows = {r["id"]: r for r in await store.endpoint_health(app["id"])}
    assert rows[good["id"]]["last_status_code"] == 200
    assert rows[good["id"]]["fail_streak"] == 0
    assert rows[bad["id"]]["last_status_code"] == 503
    assert rows[bad["id"]]["last_status"] == MessageStatus.FAIL
    assert rows[bad["id"]]["fail_streak"] == 2  # the success before them ends the count
    assert rows[bad["id"]]["failing_since"] is not None
    other = await store.create_app({"name": "other"})
    assert await store.endpoint_health(other["id"]) == []


async def test_message_log_counts_and_filters_by_status_type_and_date(store: Store) -> None:
    app = await store.create_app({"name": "log"})
    good, bad = await _endpoint(store, app["id"], "good"), await _endpoint(store, app["id"], "bad")
    ok_all = await _send(store, app["id"], "order.paid", {good["id"]: 200, bad["id"]: 200})
    half = await _send(store, app["id"], "order.refunded", {good["id"]: 200, bad["id"]: 500})
    page = Page(limit=50, descending=True)
    rows = (await store.message_log(app["id"], page)).rows
    assert [r["id"] for r in rows] == [half, ok_all]  # newest first
    assert (rows[0]["succeeded"], rows[0]["pending"], rows[0]["failed"]) == (1, 1, 0)
    assert (rows[1]["succeeded"], rows[1]["pending"], rows[1]["failed"]) == (2, 0, 0)
    pending = await store.message_log(app["id"], page, status=MessageStatus.PENDING)
    assert [r["id"] for r in pending.rows] == [half]
    typed = await store.message_log(app["id"], page, event_type="order.paid")
    assert [r["id"] for r in typed.rows] == [ok_all]
    later = utcnow() + timedelta(minutes=1)
    assert (await store.message_log(app["id"], page, after=later)).rows == []
    assert len((await store.message_log(app["id"], page, before=later)).rows) == 2


async def test_message_log_finds_a_message_by_its_event_id_or_id(store: Store) -> None:
    app, other = await store.create_app({"name": "log"}), await store.create_app({"name": "b"})
    values = {"event_type": "order.paid", "payload": b"{}"}
    first, _ = await store.create_message(app["id"], values | {"event_id": "ord-1"})
    await store.create_message(app["id"], values | {"event_id": "ord-10"})
    await store.create_message(other["id"], values | {"event_id": "ord-2"})
    page = Page(limit=50, descending=True)
    for ref in ("ord-1", first["id"]):
        found = await store.message_log(app["id"], page, ref=ref)
        assert [r["id"] for r in found.rows] == [first["id"]]  # exact, not a prefix
    assert (await store.message_log(app["id"], page, ref="ord-2")).rows == []  # another app's
    typed = await store.message_log(app["id"], page, ref="ord-1", event_type="order.shipped")
    assert typed.rows == []  # with the other filters, not instead of them


async def test_operator_overview_search_and_disabled_list(store: Store) -> None:
    app = await store.create_app({"name": "Loja"})
    ep = await _endpoint(store, app["id"], "x")
    await _endpoint(store, app["id"], "y")
    row, _ = await store.create_message(
        app["id"], {"event_type": "a.b", "payload": b"{}", "event_id": "evt-7"}
    )
    await store.update_endpoint(app["id"], ep["id"], {"disabled": True})
    (overview,) = [a for a in await store.apps_overview() if a["id"] == app["id"]]
    assert (overview["endpoints"], overview["disabled"], overview["failing"]) == (2, 1, 0)
    (disabled,) = await store.disabled_endpoints()
    assert disabled["id"] == ep["id"] and disabled["app_name"] == "Loja"
    assert disabled["disabled_reason"]
    for ref in (row["id"], "evt-7"):
        (found,) = await store.find_messages(ref)
        assert found["id"] == row["id"] and found["app_name"] == "Loja"
    assert await store.find_messages("evt-none") == []


async def test_attempt_counts_per_slot_successes_and_failures(store: Store) -> None:
    app = await store.create_app({"name": "tp"})
    good, bad = await _endpoint(store, app["id"], "good"), await _endpoint(store, app["id"], "bad")
    for _ in range(3):
        await _send(store, app["id"], "a.b", {good["id"]: 200, bad["id"]: 500})
    since = utcnow() - timedelta(minutes=10)
    counts = await store.attempt_counts(since, 300)
    # Everything happened just now: the current five-minute slot holds it all.
    now_slot = int(utcnow().timestamp()) // 300
    assert set(counts) <= {now_slot - 1, now_slot}
    assert sum(c[0] for c in counts.values()) == 3 and sum(c[1] for c in counts.values()) == 3
    assert await store.attempt_counts(utcnow() + timedelta(minutes=1), 300) == {}
