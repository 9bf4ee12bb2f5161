"""Upgrading a database that already holds data: migration 0005 numbers the existing
messages for the events feed, and new ones follow them; 0013 turns the disabled reasons
written as sentences into codes (and back on downgrade)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postback import ids
from postback.store.migrate import migrate
from postback.store.store import Store


async def _old_app(conn: AsyncConnection, now: datetime) -> None:
    await conn.execute(
        sa.text(
            "INSERT INTO applications (id, name, metadata, created_at, updated_at) "
            "VALUES ('app_old', 'old', '{}', :n, :n)"
        ),
        {"n": now},
    )


async def test_0005_numbers_existing_messages_in_id_order(empty_database_url: str) -> None:
    store = Store.connect(empty_database_url)
    try:
        await migrate(store.engine, "0004")
        now = datetime.now(UTC)
        written = [ids.new_id(ids.MESSAGE) for _ in range(5)]
        async with store.engine.begin() as conn:
            await _old_app(conn, now)
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


async def test_0013_turns_disabled_reasons_into_codes_and_back(empty_database_url: str) -> None:
    from alembic import command

    from postback import reasons
    from postback.store.migrate import alembic_config

    store = Store.connect(empty_database_url)
    try:
        await migrate(store.engine, "0012")
        now = datetime.now(UTC)
        before = {
            "ep_auto": "every delivery failed since 2026-02-28T14:29:57+00:00 (auto-disabled)",
            "ep_asked": "disabled by request",
            "ep_other": "switched off by the ops team",
        }
        async with store.engine.begin() as conn:
            await _old_app(conn, now)
            for ep_id, why in before.items():
                await conn.execute(
                    sa.text(
                        "INSERT INTO endpoints (id, app_id, url, description, disabled, metadata,"
                        " headers, secret, disabled_reason, created_at, updated_at) VALUES"
                        " (:id, 'app_old', 'https://a.example/', '', true, '{}', '{}', 's', :why,"
                        " :n, :n)"
                    ),
                    {"id": ep_id, "why": why, "n": now},
                )
        await migrate(store.engine)

        async def stored() -> dict[str, str]:
            async with store.engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT id, disabled_reason FROM endpoints"))
                return dict(rows.all())

        coded = {k: reasons.disabled_cause(v) for k, v in (await stored()).items()}
        assert coded == {
            "ep_auto": {
                "code": "failing_since",
                "since": "2026-02-28T14:29:57+00:00",
                "attempts": None,
            },
            "ep_asked": {"code": "by_request"},
            "ep_other": {"code": "text", "text": "switched off by the ops team"},
        }
        assert all(v.startswith('{"code"') for v in (await stored()).values())

        def downgrade(connection: sa.Connection) -> None:
            command.downgrade(alembic_config(connection), "0012")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await stored() == before
    finally:
        await store.close()
