"""PostgreSQL time partitions of ``attempts`` (store/pg/partitions.py, migration 0017): the
conversion of a populated table in place and back, partitions made ahead by many processes
at once, retention dropping whole partitions (and keeping the ones something still needs),
listings across a partition boundary. Messages are made at chosen times with ids.py's time
encoding, so they land in chosen partitions."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from postback import ids
from postback.domain import MessageStatus
from postback.signing import generate_secret
from postback.store import schema as t
from postback.store.core import OPERATIONAL_APP_ID
from postback.store.migrate import migrate
from postback.store.pages import Page
from postback.store.pg import partitions as p
from postback.store.store import Store
from tests.conftest import SECRET_BOX
from tests.support.polling import eventually_async

DAY_MS = 86_400_000
PG = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
TODAY_MS = p.window_start(int(time.time() * 1000), DAY_MS)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def _app(store: Store, **values: Any) -> tuple[str, str]:
    app = await store.create_app({"name": "Billing", **values})
    ep = await store.create_endpoint(
        app["id"], {"url": "http://127.0.0.1:9/hook", "secret": generate_secret()}
    )
    return app["id"], ep["id"]


async def _family(
    store: Store,
    app_id: str,
    ep_id: str,
    at_ms: int,
    status: MessageStatus = MessageStatus.SUCCESS,
    attempts: int = 2,
    event_id: str | None = None,
) -> str:
    """A message created at ``at_ms`` (its id says so), its delivery at ``status`` and
    ``attempts`` attempts, written directly."""
    msg_id, when = ids.new_id(ids.MESSAGE, at_ms=at_ms), _at(at_ms)
    async with store.engine.begin() as conn:
        await conn.execute(
            t.messages.insert().values(
                id=msg_id,
                app_id=app_id,
                event_type="a",
                event_id=event_id,
                payload=b"{}",
                created_at=when,
                tx=0,
            )
        )
        await conn.execute(
            t.deliveries.insert().values(
                id=ids.new_id(ids.DELIVERY, at_ms=at_ms),
                msg_id=msg_id,
                endpoint_id=ep_id,
                app_id=app_id,
                status=int(status),
                attempt_count=attempts,
                trigger_type=0,
                created_at=when,
                updated_at=when,
            )
        )
        for n in range(attempts):
            await conn.execute(
                t.attempts.insert().values(_attempt_row(msg_id, ep_id, app_id, at_ms + n))
            )
    return msg_id


def _attempt_row(msg_id: str, ep_id: str, app_id: str, at_ms: int) -> dict[str, Any]:
    return {
        "id": ids.new_id(ids.ATTEMPT, at_ms=at_ms),
        "msg_id": msg_id,
        "endpoint_id": ep_id,
        "app_id": app_id,
        "url": "http://127.0.0.1:9/hook",
        "status": 0,
        "response_status_code": 200,
        "response": "ok",
        "response_duration_ms": 1,
        "trigger_type": 0,
        "created_at": _at(at_ms),
    }


async def _partitions(store: Store, table: str = "attempts") -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        return await conn.run_sync(p.partitions_of, table)


async def _left(store: Store, table: sa.Table) -> set[str]:
    column = table.c.msg_id if "msg_id" in table.c else table.c.id
    stmt = sa.select(column).where(table.c.app_id != OPERATIONAL_APP_ID)
    async with store.engine.connect() as conn:
        return set(await conn.scalars(stmt))


async def test_0017_converts_a_populated_table_in_place_and_back(empty_database_url: str) -> None:
    from alembic import command

    from postback.store.migrate import alembic_config

    store = Store.connect(empty_database_url, secret_box=SECRET_BOX)
    try:
        await migrate(store.engine, "0016")
        app_id, ep_id = await _app(store)
        old = [await _family(store, app_id, ep_id, TODAY_MS - k * DAY_MS) for k in (40, 1, 0)]
        await migrate(store.engine)
        await migrate(store.engine)  # again: nothing to do
        assert await _left(store, t.attempts) == set(old)
        if store.backend.name == "postgresql":
            parts = await _partitions(store)
            assert parts[0]["name"] == "attempts_0" and parts[0]["lo"] is None
            assert len(parts) == 4  # the table as it was, and the next 3 days
            for before, after in itertools.pairwise(parts):
                assert before["hi"] == after["lo"]  # contiguous
            async with store.engine.connect() as conn:
                in_old = await conn.scalar(sa.text("SELECT count(*) FROM attempts_0"))
            assert in_old == 6
        # New attempts go in, tomorrow's in tomorrow's partition.
        new = await _family(store, app_id, ep_id, TODAY_MS + DAY_MS + 5)
        assert await _left(store, t.attempts) == {*old, new}
        page = await store.list_attempts(app_id, Page(limit=100), endpoint_id=ep_id)
        assert len(page.rows) == 8

        def downgrade(connection: sa.Connection) -> None:
            command.downgrade(alembic_config(connection), "0016")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
            if store.backend.name == "postgresql":
                assert not await conn.run_sync(p.is_partitioned, "attempts")
        assert await _left(store, t.attempts) == {*old, new}
    finally:
        await store.close()


async def test_0019_converts_messages_and_deliveries_in_place_and_back(
    empty_database_url: str,
) -> None:
    """A database filled by the version before (0018): its messages and deliveries become
    the first partitions, the eventIds move beside them and still dedupe, the next windows
    of the three tables share their bounds; migrating again does nothing; downgrade copies
    every row back into plain tables with their unique constraints."""
    from alembic import command

    from postback.store.migrate import alembic_config

    store = Store.connect(empty_database_url, secret_box=SECRET_BOX)
    try:
        await migrate(store.engine, "0018")
        app_id, ep_id = await _app(store)
        old = [await _family(store, app_id, ep_id, TODAY_MS - k * DAY_MS) for k in (40, 1)]
        named = await _family(store, app_id, ep_id, TODAY_MS + 10, event_id="order-1")
        old.append(named)
        async with store.engine.connect() as conn:
            seqs = set(await conn.scalars(sa.select(t.messages.c.seq)))
        await migrate(store.engine)
        await migrate(store.engine)  # again: nothing to do
        for table in (t.messages, t.deliveries, t.attempts):
            assert await _left(store, table) == set(old)
        if store.backend.name == "postgresql":
            attempts = await _partitions(store)
            for table in ("messages", "deliveries"):
                parts = await _partitions(store, table)
                assert parts[0]["name"] == f"{table}_0" and parts[0]["lo"] is None
                assert len(parts) == 4  # the table as it was, and the next 3 days
                for before, after in itertools.pairwise(parts):
                    assert before["hi"] == after["lo"]
                assert [x["hi"] for x in parts] == [x["hi"] for x in attempts][-4:]
            async with store.engine.connect() as conn:
                assert (await conn.execute(sa.select(t.message_event_ids))).all() == [
                    (app_id, "order-1", named)
                ]
                in_old = await conn.scalar(sa.text("SELECT count(*) FROM deliveries_0"))
                assert in_old == 3
        # The eventId still names its message; new messages number on after the old ones.
        again, created = await store.create_message(
            app_id, {"event_type": "a", "payload": b"{}", "event_id": "order-1"}
        )
        assert not created and again["id"] == named
        new, _ = await store.create_message(app_id, {"event_type": "a", "payload": b"{}"})
        assert (await store.get_message(app_id, "order-1"))["id"] == named
        async with store.engine.connect() as conn:
            seq = await conn.scalar(sa.select(t.messages.c.seq).where(t.messages.c.id == new["id"]))
        assert seq > max((n for n in seqs if n is not None), default=0)
        tomorrow = await _family(store, app_id, ep_id, TODAY_MS + DAY_MS + 5)
        everything = {*old, new["id"], tomorrow}
        assert await _left(store, t.messages) == everything

        def downgrade(connection: sa.Connection) -> None:
            command.downgrade(alembic_config(connection), "0018")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
            if store.backend.name == "postgresql":
                assert not await conn.run_sync(p.is_partitioned, "messages")
                assert not await conn.run_sync(p.is_partitioned, "deliveries")
        for table in (t.messages, t.deliveries):
            assert await _left(store, table) == everything
        with pytest.raises(sa.exc.IntegrityError):  # the unique constraint is back
            async with store.engine.begin() as conn:
                await conn.execute(
                    t.messages.insert().values(
                        id=ids.new_id(ids.MESSAGE),
                        app_id=app_id,
                        event_type="a",
                        event_id="order-1",
                        created_at=_at(TODAY_MS),
                    )
                )
    finally:
        await store.close()


@pytest.mark.parametrize("empty_database_url", ["postgresql"], indirect=True)
async def test_a_message_finding_no_partition_makes_them_and_is_written(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest writes messages and deliveries now, so an API process makes partitions
    too; if every process that makes them was stopped for longer than they were made
    ahead, the write that finds none (SQLSTATE 23514) makes them and is tried once more
    instead of losing the message. Here the partitions were made an hour at a time, 3
    hours ahead, and the message is from 5 hours after now."""
    monkeypatch.setenv("POSTBACK_PARTITION_WIDTH", "1h")
    store = Store.connect(empty_database_url, secret_box=SECRET_BOX)
    try:
        await migrate(store.engine)
        app_id, _ = await _app(store)
        later_ms = int(time.time() * 1000) + 5 * 3_600_000
        made = ids.new_id(ids.MESSAGE, at_ms=later_ms)
        new_id = ids.new_id

        def later_messages(prefix: str, at_ms: int | None = None) -> str:
            return made if prefix == ids.MESSAGE else new_id(prefix, at_ms)

        monkeypatch.setattr(ids, "new_id", later_messages)
        msg, created = await store.create_message(app_id, {"event_type": "a", "payload": b"{}"})
        assert created and msg["id"] == made
        assert await _left(store, t.messages) == {made}
        assert await _left(store, t.deliveries) == {made}
        parts = await _partitions(store, "messages")
        assert p.bound_ms(parts[-1]["hi"]) > later_ms
    finally:
        await store.close()


@PG
async def test_many_processes_make_partitions_at_once(database_url: str) -> None:
    stores = [Store.connect(database_url) for _ in range(3)]
    try:
        hour = 3600.0  # a width other than the migration's: the frontier is followed
        made = await asyncio.gather(*(s.ensure_partitions(hour, ahead=24 * 6) for s in stores))
        parts = await _partitions(stores[0])
        # The migrations' 4 a table, then one process made each, of the three tables alike.
        assert sum(made) == 3 * (len(parts) - 4)
        for before, after in itertools.pairwise(parts):
            assert before["hi"] == after["lo"]
        for table in ("messages", "deliveries"):
            assert [x["hi"] for x in await _partitions(stores[0], table)] == [
                x["hi"] for x in parts
            ]
        goal = p.window_start(int(time.time() * 1000), 3_600_000) + 24 * 6 * 3_600_000
        assert p.bound_ms(parts[-1]["hi"]) >= goal
        assert await asyncio.gather(*(s.ensure_partitions(hour, ahead=24) for s in stores)) == [
            0,
            0,
            0,
        ]
    finally:
        for s in stores:
            await s.close()


@PG
async def test_retention_drops_whole_partitions_and_keeps_what_is_needed(store: Store) -> None:
    await store.ensure_partitions(86400.0, ahead=10)
    app_id, ep_id = await _app(store)
    longer_id, longer_ep = await _app(store, retention_period=365)
    gone = await _family(store, app_id, ep_id, TODAY_MS + 2 * DAY_MS)
    pending = await _family(store, app_id, ep_id, TODAY_MS + 3 * DAY_MS, MessageStatus.PENDING)
    beside = await _family(store, app_id, ep_id, TODAY_MS + 3 * DAY_MS + 9)
    kept_longer = await _family(store, longer_id, longer_ep, TODAY_MS + 4 * DAY_MS)
    young = await _family(store, app_id, ep_id, TODAY_MS + 9 * DAY_MS)
    async with store.engine.begin() as conn:  # gone's eventId, as ingest claims it
        await conn.execute(
            t.message_event_ids.insert().values(app_id=app_id, event_id="ev-gone", msg_id=gone)
        )
    store.clock = lambda: _at(TODAY_MS + 98 * DAY_MS)  # 90 days after the end of day 8
    result = await store.run_retention(90 * 86400.0)
    assert result is not None and result["complete"]

    day = {TODAY_MS + k * DAY_MS for k in range(1, 11)}
    for table in p.TABLES:  # a window's three partitions went together
        left = {p.bound_ms(x["lo"]) if x["lo"] else None for x in await _partitions(store, table)}
        assert left == day - {TODAY_MS + k * DAY_MS for k in (1, 2, 5, 6, 7)}, table
        assert f"{table}_0" in result["partitions_dropped"]  # before today: all went
        assert p.partition_name(table, TODAY_MS + 2 * DAY_MS) in result["partitions_dropped"]
    async with store.engine.connect() as conn:  # its eventId went with it: free again
        assert (await conn.execute(sa.select(t.message_event_ids))).all() == []
    # The partition of a pending delivery stays; its done neighbour went row by row.
    assert await _left(store, t.attempts) == {pending, kept_longer, young}
    assert await _left(store, t.messages) == {pending, kept_longer, young}
    assert gone not in await _left(store, t.deliveries) and beside not in await _left(
        store, t.deliveries
    )
    assert result["attempts"] == 4  # gone's (dropped with its partition) and beside's


@PG
async def test_a_drop_waits_for_no_writer_of_messages_and_leaves_no_table_behind(
    store: Store,
) -> None:
    """Ingest has a transaction writing messages open at almost every moment: dropping a
    partition must need no lock on ``messages`` (or ``endpoints``) that such a writer holds
    off. A detach did (the detached table's foreign keys get triggers of their own on the
    tables they reference), and a drop that failed after its detach left the table, rows
    and all, outside ``attempts``."""
    await store.ensure_partitions(86400.0, ahead=10)
    app_id, ep_id = await _app(store)
    await _family(store, app_id, ep_id, TODAY_MS + 2 * DAY_MS)
    young = await _family(store, app_id, ep_id, TODAY_MS + 9 * DAY_MS)
    store.clock = lambda: _at(TODAY_MS + 98 * DAY_MS)
    async with store.engine.connect() as writer, writer.begin():
        # A message being written, not yet committed, as group commit holds one.
        await writer.execute(
            t.messages.insert().values(
                id=ids.new_id(ids.MESSAGE),
                app_id=app_id,
                event_type="a",
                payload=b"{}",
                created_at=_at(TODAY_MS + 98 * DAY_MS),
                tx=0,
            )
        )
        result = await asyncio.wait_for(store.run_retention(90 * 86400.0), 30)
    assert result is not None and result["complete"]
    assert p.partition_name("attempts", TODAY_MS + 2 * DAY_MS) in result["partitions_dropped"]
    assert await _left(store, t.attempts) == {young}
    async with store.engine.connect() as conn:
        tables = set(
            await conn.scalars(
                sa.text(
                    "SELECT relname FROM pg_class WHERE relkind = 'r'"
                    " AND relname LIKE 'attempts\\_%'"
                )
            )
        )
    assert tables == {x["name"] for x in await _partitions(store)}


async def _orphans(store: Store) -> set[str]:
    """Message ids that deliveries or attempts hold and messages does not."""
    messages = await _left(store, t.messages)
    return (await _left(store, t.deliveries) | await _left(store, t.attempts)) - messages


@PG
async def test_a_drop_beside_open_ingest_gives_up_soon_and_a_later_pass_drops_it(
    store: Store,
) -> None:
    """Ingest writes messages and deliveries at almost every moment, and dropping one of
    their partitions takes ACCESS EXCLUSIVE on the parent: a drop waiting behind an open
    ingest transaction would queue every next one behind it. It gives up after 100 ms; the
    messages of a window whose deliveries could not go stay too (no row outlives its
    message), the batches remove the rows meanwhile, and a later pass drops the rest."""
    await store.ensure_partitions(86400.0, ahead=10)
    app_id, ep_id = await _app(store)
    gone = await _family(store, app_id, ep_id, TODAY_MS + 2 * DAY_MS)
    young = await _family(store, app_id, ep_id, TODAY_MS + 9 * DAY_MS)
    store.clock = lambda: _at(TODAY_MS + 98 * DAY_MS)
    async with store.engine.connect() as writer:
        # As group commit holds one: a message and its delivery written, not yet committed.
        open_tx = await writer.begin()
        msg_id = ids.new_id(ids.MESSAGE)
        now = _at(int(time.time() * 1000))
        await writer.execute(
            t.messages.insert().values(
                id=msg_id, app_id=app_id, event_type="a", payload=b"{}", created_at=now, tx=0
            )
        )
        await writer.execute(
            t.deliveries.insert().values(
                id=ids.new_id(ids.DELIVERY),
                msg_id=msg_id,
                endpoint_id=ep_id,
                app_id=app_id,
                status=int(MessageStatus.PENDING),
                attempt_count=0,
                trigger_type=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        started = time.monotonic()
        first = await asyncio.wait_for(store.run_retention(90 * 86400.0, every=0), 30)
        took = time.monotonic() - started
        await open_tx.rollback()
    assert first is not None and first["complete"]
    assert took < 5  # one 100 ms wait, not the 2 s of attempts' drops per partition
    dropped = set(first["partitions_dropped"])
    assert p.partition_name("attempts", TODAY_MS + 2 * DAY_MS) in dropped  # ingest's elsewhere
    assert not any(n.startswith(("deliveries", "messages")) for n in dropped)
    assert await _orphans(store) == set()
    assert gone not in await _left(store, t.messages)  # the batches took its rows

    second = await store.run_retention(90 * 86400.0, every=0)
    assert second is not None
    for table in ("deliveries", "messages"):
        assert p.partition_name(table, TODAY_MS + 2 * DAY_MS) in second["partitions_dropped"]
        assert f"{table}_0" not in {x["name"] for x in await _partitions(store, table)}
    assert young in await _left(store, t.messages) and await _orphans(store) == set()


async def _every_page(list_page: Any, descending: bool) -> list[str]:
    seen, iterator = [], None
    while True:
        page = await list_page(Page(limit=1, iterator=iterator, descending=descending))
        seen += [r["id"] for r in page.rows]
        if page.done:
            return seen
        iterator = page.iterator


@PG
async def test_listings_and_resend_across_a_partition_boundary(store: Store) -> None:
    app_id, ep_id = await _app(store)
    today = await _family(store, app_id, ep_id, TODAY_MS + 1000)
    tomorrow = await _family(store, app_id, ep_id, TODAY_MS + DAY_MS + 1000)
    async with store.engine.connect() as conn:
        for table in ("attempts", "deliveries", "messages"):
            key = "id" if table == "messages" else "msg_id"
            where = await conn.execute(
                sa.text(f"SELECT tableoid::regclass::text, {key} FROM {table}")
            )
            homes = {msg: part for part, msg in where}
            assert homes[today] != homes[tomorrow], table  # two partitions of each table

    # Messages page by id across the boundary, both ways; the events feed reads both.
    for descending in (False, True):
        seen = await _every_page(lambda page: store.list_messages(app_id, page), descending)
        assert seen == sorted([today, tomorrow], reverse=descending)
        seen = await _every_page(
            lambda page: store.list_attempted_messages(app_id, ep_id, page), descending
        )
        assert seen == sorted([today, tomorrow], reverse=descending)
    first, cursor = await store.poll_events(app_id, None, 1)
    second, cursor = await store.poll_events(app_id, cursor, 1)
    assert [r["id"] for r in first + second] == [today, tomorrow]
    assert (await store.poll_events(app_id, cursor, 1))[0] == []

    # Recover puts the failed deliveries of both windows back in the queue.
    async with store.engine.begin() as conn:
        await conn.execute(t.deliveries.update().values(status=int(MessageStatus.FAIL)))
    task = await store.start_recover(app_id, ep_id, _at(TODAY_MS), None)
    assert (await store.run_recover(task["id"]))["data"]["recovered"] == 2
    async with store.engine.connect() as conn:
        due = dict(
            (await conn.execute(sa.select(t.deliveries.c.msg_id, t.deliveries.c.status))).all()
        )
    assert due == {today: int(MessageStatus.PENDING), tomorrow: int(MessageStatus.PENDING)}
    claimed = await store.claim_due_deliveries(10, 30)
    assert sorted(c.msg_id for c in claimed) == [today, tomorrow]  # the floor is today's
    async with store.engine.begin() as conn:
        await conn.execute(
            t.deliveries.update().values(status=int(MessageStatus.SUCCESS), next_attempt_at=None)
        )

    for descending in (False, True):
        seen, iterator = [], None
        while True:
            page = await store.list_attempts(
                app_id, Page(limit=1, iterator=iterator, descending=descending), endpoint_id=ep_id
            )
            seen += [r["id"] for r in page.rows]
            if page.done:
                break
            iterator = page.iterator
        assert seen == sorted(seen, reverse=descending) and len(seen) == 4

    await store.resend(app_id, tomorrow, ep_id)
    async with store.engine.begin() as conn:
        await conn.execute(
            t.attempts.insert().values(_attempt_row(tomorrow, ep_id, app_id, TODAY_MS + DAY_MS + 9))
        )
    by_msg = await store.list_attempts(app_id, Page(limit=10), msg_id=tomorrow)
    assert len(by_msg.rows) == 3
    one = by_msg.rows[0]
    assert (await store.get_attempt(app_id, tomorrow, one["id"]))["id"] == one["id"]


@PG
async def test_the_claim_floor_follows_a_resend_into_an_old_window(store: Store) -> None:
    """The claim reads the queue only from its floor up (the smallest message id of a
    queued row), which prunes the old windows' partitions; a resend of a 60-day-old message
    puts a queued row in an old window, and the next claim takes it."""
    app_id, ep_id = await _app(store)
    old = await _family(store, app_id, ep_id, TODAY_MS - 60 * DAY_MS)
    recent = await _family(store, app_id, ep_id, TODAY_MS + DAY_MS + 10, MessageStatus.PENDING)
    async with store.engine.begin() as conn:
        await conn.execute(
            t.deliveries.update()
            .where(t.deliveries.c.msg_id == recent)
            .values(next_attempt_at=_at(int(time.time() * 1000)))
        )
    assert [c.msg_id for c in await store.claim_due_deliveries(10, 30)] == [recent]
    await store.resend(app_id, old, ep_id)
    assert [c.msg_id for c in await store.claim_due_deliveries(10, 30)] == [old]


@PG
async def test_an_api_process_makes_the_partitions_ahead(store: Store, database_url: str) -> None:
    """Ingest writes messages and deliveries, so an API process (no worker beside it) makes
    the partitions of the next windows at start, as workers do."""
    from postback.api.app import create_app
    from postback.config import Settings

    async with store.engine.begin() as conn:  # as if every process had stopped for days
        for table in p.TABLES:
            for part in (await conn.run_sync(p.partitions_of, table))[1:]:
                if p.bound_ms(part["lo"]) > TODAY_MS:
                    await conn.execute(sa.text(f'DROP TABLE "{part["name"]}"'))
    assert len(await _partitions(store, "messages")) == 1
    app = create_app(Settings(database_url=database_url), store, worker=False)
    async with app.router.lifespan_context(app):

        async def made() -> bool:
            return all([len(await _partitions(store, table)) >= 4 for table in p.TABLES])

        await eventually_async(made, what="the API process made partitions")
    _, created = await store.create_message(
        (await _app(store))[0], {"event_type": "a", "payload": b"{}"}
    )
    assert created
