"""Retention of records (store/retention.py) and erasure (Store.expunge_content, delete_app)
on both databases, with the store's clock moved forward: what is past its period goes with
its deliveries and attempts, what still has something to send stays, nothing else moves."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from postback import ids
from postback.domain import MessageStatus, utcnow
from postback.signing import generate_secret
from postback.store import schema as t
from postback.store.core import OPERATIONAL_APP_ID
from postback.store.engine import create_engine
from postback.store.errors import NotFound
from postback.store.messages import EXPUNGED
from postback.store.pages import Page
from postback.store.sqlite import space
from postback.store.store import Store
from tests.support.polling import eventually_async

Row = dict[str, Any]
NOW = utcnow().replace(microsecond=0)
DAY = 86400.0
DEFAULT = 90 * DAY


async def _app(store: Store, **values: Any) -> tuple[str, str]:
    app = await store.create_app({"name": "Billing", **values})
    ep = await store.create_endpoint(
        app["id"], {"url": "http://127.0.0.1:9/hook", "secret": generate_secret()}
    )
    return app["id"], ep["id"]


async def _message(store: Store, app_id: str, *, status: MessageStatus, attempts: int = 1) -> str:
    """A message to the app's endpoint whose delivery is at ``status``, with attempts."""
    msg, _ = await store.create_message(app_id, {"event_type": "invoice.paid", "payload": b"{}"})
    d = t.deliveries.c
    async with store.engine.begin() as conn:
        await conn.execute(
            t.deliveries.update().where(d.msg_id == msg["id"]).values(status=int(status))
        )
        (delivery,) = await conn.execute(sa.select(t.deliveries).where(d.msg_id == msg["id"]))
    for _ in range(attempts):
        await _attempt(
            store, msg["id"], delivery.endpoint_id, app_id, "the receiver's secret answer"
        )
    return str(msg["id"])


async def _left(store: Store, table: sa.Table) -> set[str]:
    """The message ids (the row ids of other tables) left, outside the operational app."""
    column = table.c.msg_id if "msg_id" in table.c else table.c.id
    stmt = sa.select(column)
    if "app_id" in table.c:
        stmt = stmt.where(table.c.app_id != OPERATIONAL_APP_ID)
    async with store.engine.connect() as conn:
        return set(await conn.scalars(stmt))


async def test_records_past_retention_go_and_pending_ones_stay(
    store: Store, clock: list[datetime]
) -> None:
    app_id, _ = await _app(store)
    done = await _message(store, app_id, status=MessageStatus.SUCCESS, attempts=2)
    failed = await _message(store, app_id, status=MessageStatus.FAIL)
    retrying = await _message(store, app_id, status=MessageStatus.PENDING)
    sending = await _message(store, app_id, status=MessageStatus.SENDING)
    clock[0] = NOW + timedelta(days=45)
    young = await _message(store, app_id, status=MessageStatus.SUCCESS)

    clock[0] = NOW + timedelta(days=89)
    first = await store.run_retention(DEFAULT)
    assert first is not None and first["attempts"] == 0  # nothing is 90 days old yet
    assert await store.run_retention(DEFAULT) is None  # a complete pass is not due again yet
    clock[0] = NOW + timedelta(days=91)
    result = await store.run_retention(DEFAULT)
    assert result is not None and result["complete"]
    assert (result["deliveries"], result["attempts"]) == (2, 3)
    kept = {retrying, sending, young}
    assert await _left(store, t.messages) == kept
    assert await _left(store, t.deliveries) == kept
    assert await _left(store, t.attempts) == kept
    assert done not in await _left(store, t.messages) and failed not in kept

    status = await store.retention_status()
    assert status is not None and status["attempts"] == 3
    assert status["last_run_at"] == clock[0]


async def test_an_application_override_shortens_or_lengthens_its_period(
    store: Store, clock: list[datetime]
) -> None:
    short_app, _ = await _app(store, retention_period=5)
    long_app, _ = await _app(store, retention_period=365)
    plain_app, _ = await _app(store)
    short = await _message(store, short_app, status=MessageStatus.SUCCESS)
    long = await _message(store, long_app, status=MessageStatus.SUCCESS)
    plain = await _message(store, plain_app, status=MessageStatus.SUCCESS)

    assert short in await _left(store, t.messages)
    clock[0] = NOW + timedelta(days=6)
    await store.run_retention(DEFAULT)
    assert await _left(store, t.messages) == {long, plain}
    clock[0] = NOW + timedelta(days=100)
    await store.run_retention(DEFAULT)
    assert await _left(store, t.messages) == {long}
    assert await _left(store, t.endpoints) and len(await _left(store, t.applications)) >= 3


async def test_many_workers_at_once_run_one_pass(store: Store, clock: list[datetime]) -> None:
    app_id, _ = await _app(store)
    for _ in range(5):
        await _message(store, app_id, status=MessageStatus.SUCCESS)
    clock[0] = NOW + timedelta(days=91)
    results = await asyncio.gather(*(store.run_retention(DEFAULT) for _ in range(4)))
    ran = [r for r in results if r is not None]
    assert len(ran) == 1 and ran[0]["attempts"] == 5
    assert await _left(store, t.messages) == set()


async def test_a_pass_out_of_time_resumes_where_it_stopped(
    store: Store, clock: list[datetime]
) -> None:
    app_id, _ = await _app(store)
    msgs = [await _message(store, app_id, status=MessageStatus.SUCCESS) for _ in range(3)]
    clock[0] = NOW + timedelta(days=91)
    first = await store.run_retention(DEFAULT, max_seconds=0)
    assert first is not None and not first["complete"]
    # PostgreSQL drops the window's whole partitions first (attempts, deliveries, messages),
    # whatever the time left; the batches had none.
    dropped = bool(first["partitions_dropped"])
    assert first["attempts"] == (3 if dropped else 0)
    assert first["messages"] >= 3 if dropped else first["messages"] == 0
    assert first["resume_after"] == ""
    second = await store.run_retention(DEFAULT)  # due again at once, from where it was
    assert second is not None and second["complete"]
    assert first["attempts"] + second["attempts"] == 3
    assert not await _left(store, t.messages) & set(msgs)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_delivery_made_pending_while_a_pass_waits_keeps_its_message(
    store: Store, clock: list[datetime]
) -> None:
    """A resend racing the pass: its transaction holds the delivery's row when the pass
    comes to it; the pass waits, then reads the delivery pending and keeps the message."""
    app_id, _ = await _app(store)
    raced = await _message(store, app_id, status=MessageStatus.SUCCESS)
    other = await _message(store, app_id, status=MessageStatus.SUCCESS)
    clock[0] = NOW + timedelta(days=91)
    d = t.deliveries.c
    async with store.engine.connect() as resend:
        await store.backend.hold_partition_drops(resend)  # as Store.resend does first
        await resend.execute(
            t.deliveries.update().where(d.msg_id == raced).values(status=MessageStatus.PENDING)
        )
        passing = asyncio.create_task(store.run_retention(DEFAULT))

        async def waiting_for_the_row() -> bool:
            async with store.engine.connect() as conn:
                waits = await conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database()"
                    )
                )
            return bool(waits)

        await eventually_async(waiting_for_the_row, what="the pass waits for the row")
        await resend.commit()
    result = await passing
    assert result is not None and result["attempts"] == 1  # the other message's
    assert await _left(store, t.messages) == {raced}
    assert other not in await _left(store, t.deliveries)


async def _row_lock_waits(store: Store) -> bool:
    """Whether a session of this database waits for another's row lock."""
    async with store.engine.connect() as conn:
        waits = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'transactionid'"
                " AND datname = current_database()"
            )
        )
    return bool(waits)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_resend_racing_a_batch_never_leaves_a_delivery_without_its_message(
    store: Store, clock: list[datetime]
) -> None:
    """Nothing references ``messages`` on PostgreSQL (its partitions are dropped whole), so
    no foreign key's check makes a resend's new delivery wait for a batch removing its
    message: the resend locks the message FOR KEY SHARE itself (Store._get_message). The
    resend first: the batch waits, then reads the new delivery and keeps the message. The
    batch first: the resend waits, then finds no message and writes nothing."""
    app_id, _ = await _app(store)
    kept = await _message(store, app_id, status=MessageStatus.SUCCESS)
    gone = await _message(store, app_id, status=MessageStatus.SUCCESS)
    later = await store.create_endpoint(  # the messages have no delivery to it yet
        app_id, {"url": "http://127.0.0.1:9/later", "secret": generate_secret()}
    )
    clock[0] = NOW + timedelta(days=91)
    async with store.engine.connect() as resend:
        await store.backend.hold_partition_drops(resend)  # as Store.resend does
        await store._get_message(resend, app_id, kept, lock=True)
        await resend.execute(
            t.deliveries.insert().values(
                id=ids.new_id(ids.DELIVERY),
                msg_id=kept,
                endpoint_id=later["id"],
                app_id=app_id,
                status=int(MessageStatus.PENDING),
                attempt_count=0,
                trigger_type=1,
                next_attempt_at=clock[0],
                created_at=clock[0],
                updated_at=clock[0],
            )
        )
        passing = asyncio.create_task(store.run_retention(DEFAULT, every=0))
        await eventually_async(lambda: _row_lock_waits(store), what="the batch waits")
        await resend.commit()
    result = await passing
    assert result is not None
    assert kept in await _left(store, t.messages)
    assert gone not in await _left(store, t.messages)

    # The batch first, as _remove_batch locks and deletes; its delivery went with it.
    third = (await store.create_message(app_id, {"event_type": "a", "payload": b"{}"}))[0]["id"]
    async with store.engine.connect() as batch:
        m, d = t.messages.c, t.deliveries.c
        await batch.execute(sa.select(m.id).where(m.id == third).with_for_update(of=t.messages))
        await batch.execute(t.deliveries.delete().where(d.msg_id == third))
        await batch.execute(t.messages.delete().where(m.id == third))
        resending = asyncio.create_task(store.resend(app_id, third, later["id"]))
        await eventually_async(lambda: _row_lock_waits(store), what="the resend waits")
        await batch.commit()
    with pytest.raises(NotFound):
        await resending
    assert third not in await _left(store, t.deliveries)
    deliveries = await _left(store, t.deliveries)
    assert deliveries <= await _left(store, t.messages)  # none without its message


async def test_erasure_keeps_a_tombstone_and_nothing_of_the_content(
    store: Store, clock: list[datetime]
) -> None:
    app_id, ep_id = await _app(store)
    await store.update_endpoint(app_id, ep_id, {"projection": {"include": ["/id"]}})
    other = await _message(store, app_id, status=MessageStatus.SUCCESS)
    msg, _ = await store.create_message(
        app_id, {"event_type": "buyer.updated", "payload": b'{"id":"b1","cpf":"123"}'}
    )
    d = t.deliveries.c
    async with store.engine.begin() as conn:
        projected = await conn.scalar(sa.select(d.payload).where(d.msg_id == msg["id"]))
        assert projected == b'{"id":"b1"}'  # a stored copy of the message, for its endpoint
    await _attempt(store, msg["id"], ep_id, app_id)

    await store.expunge_content(app_id, msg["id"])
    await store.expunge_content(app_id, msg["id"])  # twice is harmless
    async with store.engine.connect() as conn:
        m = (await conn.execute(sa.select(t.messages).where(t.messages.c.id == msg["id"]))).one()
        copies = list(await conn.scalars(sa.select(d.payload).where(d.msg_id == msg["id"])))
        answers = list(
            await conn.scalars(
                sa.select(t.attempts.c.response).where(t.attempts.c.msg_id == msg["id"])
            )
        )
        untouched = await conn.scalar(
            sa.select(t.attempts.c.response).where(t.attempts.c.msg_id == other)
        )
    assert m.payload is None and m.event_type == "buyer.updated"
    assert copies == [None] and answers == [EXPUNGED]
    assert untouched == "the receiver's secret answer"
    listed = await store.list_messages(app_id, Page(limit=10))
    assert msg["id"] in {r["id"] for r in listed.rows}  # the tombstone stays in listings
    with pytest.raises(NotFound):
        await store.expunge_content(app_id, ids.new_id(ids.MESSAGE))


async def _attempt(
    store: Store, msg_id: str, ep_id: str, app_id: str, answer: str = '{"cpf":"123"}'
) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            t.attempts.insert().values(
                id=ids.new_id(ids.ATTEMPT),
                msg_id=msg_id,
                endpoint_id=ep_id,
                app_id=app_id,
                url="http://127.0.0.1:9/hook",
                status=0,
                response_status_code=200,
                response=answer,
                response_duration_ms=3,
                trigger_type=0,
                created_at=store.clock(),
            )
        )


async def test_deleting_an_application_removes_all_of_its_rows(
    store: Store, clock: list[datetime]
) -> None:
    gone_app, gone_ep = await _app(store)
    kept_app, kept_ep = await _app(store)
    for _ in range(2):
        await _message(store, gone_app, status=MessageStatus.SUCCESS)
    await _message(store, gone_app, status=MessageStatus.PENDING)
    await store.create_message(
        gone_app, {"event_type": "a", "payload": b"{}", "event_id": "order-1"}
    )
    kept = await _message(store, kept_app, status=MessageStatus.SUCCESS)
    await store.create_app_token(gone_app, 3600)
    await store.start_recover(gone_app, gone_ep, NOW, None)

    await store.delete_app(gone_app)
    tables = [t.messages, t.deliveries, t.attempts, t.endpoints, t.app_tokens, t.background_tasks]
    if store.backend.name == "postgresql":
        tables.append(t.message_event_ids)  # eventIds are kept beside messages there
    async with store.engine.connect() as conn:
        for table in tables:
            left = await conn.scalar(
                sa.select(sa.func.count()).select_from(table).where(table.c.app_id == gone_app)
            )
            assert left == 0, table.name
        assert (
            await conn.scalar(
                sa.select(sa.func.count())
                .select_from(t.applications)
                .where(t.applications.c.id == gone_app)
            )
            == 0
        )
    assert await _left(store, t.messages) == {kept}
    assert kept_ep in await _left(store, t.endpoints)


async def test_storage_figures_count_rows_and_bytes(store: Store, clock: list[datetime]) -> None:
    app_id, _ = await _app(store)
    await _message(store, app_id, status=MessageStatus.SUCCESS, attempts=3)
    figures = {f["table"]: f for f in await store.storage_figures()}
    assert set(figures) == {"messages", "deliveries", "attempts"}
    assert figures["messages"]["oldest"] == NOW
    assert figures["messages"]["bytes"] > 0
    if store.backend.name == "sqlite":  # exact counts; PostgreSQL's are estimates
        assert figures["attempts"]["rows"] == 3  # messages: also the operational one
        assert figures["messages"]["rows"] == figures["deliveries"]["rows"] + 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_storage_figures_on_sqlite_wait_for_no_writer_and_hold_up_none(
    store: Store, clock: list[datetime]
) -> None:
    """Counting and sizing read every table whole: on the pooled connection (which begins
    IMMEDIATE) that held the write lock for seconds at 10 M attempts. They are read beside
    it: a writer holding the lock does not stop them, and the pool stays free for others."""
    app_id, _ = await _app(store)
    await _message(store, app_id, status=MessageStatus.SUCCESS, attempts=2)
    path = store.engine.url.database
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process writing, lock held
        sizes = await asyncio.wait_for(store.backend.table_sizes(["attempts", "messages"]), 5)
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert sizes["attempts"]["rows"] == 2
    assert sizes["messages"]["bytes"] > 0

    # While they are measured, the store's own connection serves writes.
    measuring = asyncio.create_task(store.backend.table_sizes(["attempts"]))
    await asyncio.wait_for(_message(store, app_id, status=MessageStatus.SUCCESS), 5)
    assert (await measuring)["attempts"]["rows"] in (2, 3)


COUNT = 10_000


async def _big_pass(store: Store, clock: list[datetime], before: Any = None) -> Row:
    """COUNT delivered messages (and one still pending) past retention, then one pass;
    ``before`` runs once they are loaded. Returns the pass's result, checked complete."""
    app_id, ep_id = await _app(store)
    await _load(store, app_id, ep_id, COUNT)
    pending = await _message(store, app_id, status=MessageStatus.PENDING)
    if before is not None:
        await before()
    clock[0] = NOW + timedelta(days=91)
    result = await store.run_retention(DEFAULT, max_seconds=240)
    print(f"retention pass on {store.backend.name}:", result)
    assert result is not None and result["complete"], result
    assert (result["deliveries"], result["attempts"]) == (COUNT,) * 2
    assert result["batches"] >= COUNT // 4096
    assert await _left(store, t.messages) == {pending}
    assert await _left(store, t.attempts) == {pending}
    return result


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_batches_stay_short_and_give_the_space_back(
    store: Store, clock: list[datetime]
) -> None:
    pages: list[int] = []

    async def measure() -> None:
        async with store.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA auto_vacuum")).scalar() == 2  # incremental
            pages.append((await conn.exec_driver_sql("PRAGMA page_count")).scalar())

    result = await _big_pass(store, clock, measure)
    # The window adapts to the budget (25 ms), under the 50 ms issue 19 sets: the typical
    # batch stays under it even on a busy machine; a lone batch the machine stalled may
    # take longer (it halves the next window), so the bound on the longest is generous.
    assert store.backend.batch_budget == 0.025
    assert result["median_batch_ms"] < 50 and result["max_batch_ms"] < 500, result
    assert result["pages_given_back"] > 0
    async with store.engine.connect() as conn:
        pages_after = (await conn.exec_driver_sql("PRAGMA page_count")).scalar()
        free = (await conn.exec_driver_sql("PRAGMA freelist_count")).scalar()
    assert pages_after < pages[0] / 2 and free < 300


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_removes_by_id_windows_in_short_transactions(
    store: Store, clock: list[datetime]
) -> None:
    result = await _big_pass(store, clock)
    assert result["max_batch_ms"] < 4 * store.backend.batch_budget * 1000, result
    assert result["pages_given_back"] == 0  # autovacuum's to reuse


async def _load(store: Store, app_id: str, ep_id: str, count: int) -> None:
    """``count`` delivered messages, each with a delivery and an attempt with a 1 KiB
    answer, written directly (not through the API)."""
    body = "x" * 1024
    msgs, deliveries, attempts = [], [], []
    async with store.engine.connect() as conn:
        seq = await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(t.messages.c.seq), 0)))
    for n in range(seq, seq + count):
        msg_id = ids.new_id(ids.MESSAGE)
        msgs.append(
            {"id": msg_id, "app_id": app_id, "event_type": "a", "payload": b"{}", "seq": n + 1}
            | {"created_at": NOW, "tx": 0}
        )
        deliveries.append(
            {"id": ids.new_id(ids.DELIVERY), "msg_id": msg_id, "endpoint_id": ep_id}
            | {"app_id": app_id, "status": 0, "attempt_count": 1, "trigger_type": 0}
            | {"created_at": NOW, "updated_at": NOW}
        )
        attempts.append(
            {"id": ids.new_id(ids.ATTEMPT), "msg_id": msg_id, "endpoint_id": ep_id}
            | {"app_id": app_id, "url": "http://h", "status": 0, "response_status_code": 200}
            | {"response": body, "response_duration_ms": 1, "trigger_type": 0, "created_at": NOW}
        )
    async with store.engine.begin() as conn:
        await conn.execute(t.messages.insert(), msgs)
        await conn.execute(t.deliveries.insert(), deliveries)
        await conn.execute(t.attempts.insert(), attempts)
    if store.backend.name == "postgresql":  # as autovacuum would after such a load
        async with store.engine.connect() as conn:
            await conn.execute(sa.text("COMMIT"))
            await conn.execute(sa.text("ANALYZE messages, deliveries, attempts"))


async def test_an_sqlite_file_made_before_gives_space_back_once_converted(tmp_path: Path) -> None:
    """A file created without auto_vacuum (before this version) keeps NONE whatever the
    engine asks on connect: nothing is given back, and nothing fails, until the VACUUM
    docs/configuration.md prescribes converts it."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript("CREATE TABLE x (a BLOB)")
    _fill_and_empty(old)
    old.close()
    given, left = await _give_back(path)
    assert given == 0 and left > 400  # auto_vacuum NONE: the free pages stay in the file
    converted = sqlite3.connect(path, isolation_level=None)
    converted.executescript("PRAGMA auto_vacuum=INCREMENTAL; VACUUM;")
    _fill_and_empty(converted)
    converted.close()
    given, left = await _give_back(path)
    assert given > 400 and left == 0


async def _give_back(path: Path) -> tuple[int, int]:
    """Through postback's engine: the pages given back, and the free pages left."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        given = await space.give_back_space(engine, 10_000)
        async with engine.connect() as conn:
            return given, (await conn.exec_driver_sql("PRAGMA freelist_count")).scalar()
    finally:
        await engine.dispose()


def _fill_and_empty(db: sqlite3.Connection) -> None:
    """2 MB of rows written and deleted in one transaction: freed pages in the file."""
    db.execute("BEGIN")
    db.executemany("INSERT INTO x VALUES (?)", [(b"\0" * 1000,)] * 2000)
    db.execute("DELETE FROM x")
    db.execute("COMMIT")
