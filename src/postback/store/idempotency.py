"""Idempotency keys: a POST repeated with the same key gets the first answer again.

A stored answer may carry a secret (a rotated ``whsec_``, an app-portal token), so it is
sealed with the store's SecretBox (AES-256-GCM, the row's key as associated data): a
database dump shows the status code and content type, never the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from postback.store import schema as t
from postback.store.core import StoreCore
from postback.store.secretbox import PREFIX, SecretKeyError

if TYPE_CHECKING:
    pass

KEEP_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class Replay:
    """What to answer instead of running the request again."""

    status_code: int | None  # None: the first request with this key is still running
    response: bytes
    content_type: str
    same_request: bool


class IdempotencyMixin(StoreCore):
    async def idempotency_begin(self, key: str, request_hash: str) -> Replay | None:
        """Claim ``key`` for a new request (None: go ahead), or say what it answered before."""
        c = t.idempotency_keys.c
        now = self.clock()
        async with self.engine.begin() as conn:
            await conn.execute(
                t.idempotency_keys.delete().where(c.key == key, c.created_at < now - KEEP_FOR)
            )
            for _ in range(2):
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            t.idempotency_keys.insert().values(
                                key=key, request_hash=request_hash, created_at=now
                            )
                        )
                    return None
                except IntegrityError:
                    row = (
                        await conn.execute(sa.select(t.idempotency_keys).where(c.key == key))
                    ).one()
                try:
                    response = self._open_response(row.response, key)
                except SecretKeyError:
                    # Written in plaintext before answers were sealed (or under another
                    # key): not trusted, forgotten, and the request runs again.
                    await conn.execute(t.idempotency_keys.delete().where(c.key == key))
                    continue
                return Replay(
                    status_code=row.status_code,
                    response=response,
                    content_type=row.content_type or "application/json",
                    same_request=row.request_hash == request_hash,
                )
        raise AssertionError("unreachable: the second claim cannot find the row it deleted")

    async def idempotency_finish(
        self, key: str, status_code: int, response: bytes, content_type: str
    ) -> None:
        c = t.idempotency_keys.c
        # latin-1 maps every byte to one character, so any body survives the text seal.
        sealed = self._seal(response.decode("latin-1"), _aad(key)).encode("ascii")
        async with self.engine.begin() as conn:
            await conn.execute(
                t.idempotency_keys.update()
                .where(c.key == key)
                .values(status_code=status_code, response=sealed, content_type=content_type)
            )

    def _open_response(self, stored: bytes | None, key: str) -> bytes:
        if stored is None:
            return b""  # still running: nothing was written yet
        text = stored.decode("ascii", errors="replace")
        if not text.startswith(PREFIX):
            raise SecretKeyError("stored answer is not sealed")
        return self._unseal(text, _aad(key)).encode("latin-1")

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


def _aad(key: str) -> str:
    # Bound to its row: a sealed answer copied under another caller's key does not open.
    return "idempotency:" + key
