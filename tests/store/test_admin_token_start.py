"""POSTBACK_ADMIN_TOKEN installed by processes that start at the same moment (an api beside
a worker): each starts, and the token is installed once."""

from __future__ import annotations

import asyncio

from postback.cli.server import ensure_operator_token
from postback.config import Settings
from postback.store.store import Store
from tests.support.server import SECRET_BOX

TOKEN = "pb_started_together_0123456789"


async def test_processes_starting_together_install_the_admin_token_once(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, admin_token=TOKEN)
    stores = [Store.connect(database_url, secret_box=SECRET_BOX) for _ in range(4)]
    try:
        # Each has checked that the token is missing before any inserts it.
        results = await asyncio.gather(*(ensure_operator_token(s, settings) for s in stores))
        assert results == [None] * 4
        assert await stores[0].operator_token_valid(TOKEN)
        assert [t["name"] for t in await stores[0].list_operator_tokens()] == [
            "POSTBACK_ADMIN_TOKEN"
        ]
    finally:
        for s in stores:
            await s.close()
