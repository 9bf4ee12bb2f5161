"""Figures read at scrape time for /metrics: they describe the database, so every API process
reports the same values, whichever worker did the work."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from postback.store import schema as t


class MetricsQueriesMixin:
    engine: AsyncEngine

    async def count_disabled_endpoints(self) -> int:
        """Endpoints disabled now, by request or automatically after failing too long."""
        e = t.endpoints.c
        async with self.engine.connect() as conn:
            return int(
                await conn.scalar(sa.select(sa.func.count()).where(e.disabled.is_(True))) or 0
            )
