"""Idempotency keys: a POST repeated with the same key gets the first answer again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from postback.store import schema as t

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

KEEP_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class Replay:
    """What to answer instead of running the request again."""

    status_code: int | None  # None: the first request with this key is still running
    response: bytes
    content_type: str
    same_request: bool


class IdempotencyMixin:
    engine: AsyncEngine
    clock: Callable[[], datetime]

    async def idempotency_begin(self, key: str, request_hash: str) -> Replay | None:
        """Claim ``key`` for a new request (None: go ahead), or say what it answered before."""
        c = t.idempotency_keys.c
        now = self.clock()
        async with self.engine.begin() as conn:
            await conn.execute(
                t.idempotency_keys.delete().where(c.key == key, c.created_at < now - KEEP_FOR)
            )
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        t.idempotency_keys.insert().values(
                            key=key, request_hash=request_hash, created_at=now
                        )
                    )
                return None
            except IntegrityError:
                row = (await conn.execute(sa.select(t.idempotency_keys).where(c.key == key))).one()
        return Replay(
            status_code=row.status_code,
            response=row.response or b"",
            content_type=row.content_type or "application/json",
            same_request=row.request_hash == request_hash,
        )

    async def idempotency_finish(
        self, key: str, status_code: int, response: bytes, content_type: str
    ) -> None:
        c = t.idempotency_keys.c
        async with self.engine.begin() as conn:
            await conn.execute(
                t.idempotency_keys.update()
                .where(c.key == key)
                .values(status_code=status_code, response=response, content_type=content_type)
            )

    async def idempotency_abort(self, key: str) -> None:
        """Forget a key whose request failed on our side, so a retry runs it again."""
        async with self.engine.begin() as conn:
            await conn.execute(t.idempotency_keys.delete().where(t.idempotency_keys.c.key == key))

    async def purge_idempotency_keys(self) -> int:
        c = t.idempotency_keys.c
        async with self.engine.begin() as conn:
            done = await conn.execute(
                t.idempotency_keys.delete().where(c.created_at < self.clock() - KEEP_FOR)
            )
        return done.rowcount
