"""Upgrading a database that already holds data: migration 0005 numbers the existing
messages for the events feed, and new ones follow them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from postback import ids
from postback.store.migrate import migrate
from postback.store.store import Store


async def test_0005_numbers_existing_messages_in_id_order(empty_database_url: str) -> None:
    store = Store.connect(empty_database_url)
    try:
        await migrate(store.engine, "0004")
        now = datetime.now(UTC)
        written = [ids.new_id(ids.MESSAGE) for _ in range(5)]
        async with store.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO applications (id, name, metadata, created_at, updated_at) "
                    "VALUES ('app_old', 'old', '{}', :n, :n)"
                ),
                {"n": now},
            )
            for i, msg_id in enumerate(reversed(written)):  # inserted out of id order
                await conn.execute(
                    sa.text(
                        "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
                        "VALUES (:id, 'app_old', 'e', :p, :n)"
                    ),
                    {"id": msg_id, "p": b'{"i": %d}' % i, "n": now},
                )
        await migrate(store.engine)
        rows, cursor = await store.poll_events("app_old", None, 10)
        assert [r["id"] for r in rows] == written
        assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
        new, _ = await store.create_message("app_old", {"event_type": "e", "payload": b"{}"})
        after, _ = await store.poll_events("app_old", cursor, 10)
        assert [(r["id"], r["seq"]) for r in after] == [(new["id"], 6)]
    finally:
        await store.close()
