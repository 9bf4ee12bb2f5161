"""Who may call the API: operator tokens and app-portal tokens, stored as SHA-256 hashes."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback import ids
from postback.store import schema as t
from postback.store.core import StoreCore
from postback.store.errors import NotFound

if TYPE_CHECKING:
    pass

# A valid token is remembered this long, so most requests skip the lookup; a revocation
# takes effect within it.
CACHE_SECONDS = 5.0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The caller: the operator (every route) or one application's portal (its own routes)."""

    token_id: str
    app_id: str | None = None
    read_only: bool = False
    expires_at: datetime | None = None

    @property
    def is_operator(self) -> bool:
        return self.app_id is None


class TokensMixin(StoreCore):
    async def add_operator_token(self, token: str, name: str) -> str:
        token_id = ids.new_id(ids.TOKEN)
        async with self.engine.begin() as conn:
            await conn.execute(
                t.operator_tokens.insert().values(
                    id=token_id, token_hash=hash_token(token), name=name, created_at=self.clock()
                )
            )
        return token_id

    async def create_operator_token(self, name: str) -> tuple[str, str]:
        """A new operator token: (id, token). The token is shown once and never stored."""
        token = "pb_" + secrets.token_urlsafe(32)
        return await self.add_operator_token(token, name), token

    async def list_operator_tokens(self) -> list[dict[str, Any]]:
        c = t.operator_tokens.c
        stmt = sa.select(c.id, c.name, c.created_at, c.revoked_at).order_by(c.id)
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]

    async def revoke_operator_token(self, token_id: str) -> None:
        c = t.operator_tokens.c
        async with self.engine.begin() as conn:
            done = await conn.execute(
                t.operator_tokens.update()
                .where(c.id == token_id, c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
        if done.rowcount == 0:
            raise NotFound(f"no active operator token {token_id!r}")
        self._token_cache.clear()

    async def has_operator_tokens(self) -> bool:
        c = t.operator_tokens.c
        async with self.engine.connect() as conn:
            found = await conn.scalar(sa.select(c.id).where(c.revoked_at.is_(None)).limit(1))
        return found is not None

    async def operator_token_valid(self, token: str) -> bool:
        principal = await self.authenticate(token)
        return principal is not None and principal.is_operator

    async def create_app_token(
        self, app_id: str, ttl_seconds: float, *, read_only: bool = False
    ) -> tuple[str, datetime]:
        """A portal token for one application: (token, expiry)."""
        token = "pbapp_" + secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + timedelta(seconds=ttl_seconds)
        async with self.engine.begin() as conn:
            await conn.execute(
                t.app_tokens.insert().values(
                    id=ids.new_id(ids.TOKEN),
                    app_id=app_id,
                    token_hash=hash_token(token),
                    read_only=read_only,
                    expires_at=expires,
                    created_at=now,
                )
            )
        return token, expires

    async def expire_app_tokens(self, app_id: str, grace_seconds: float = 0) -> None:
        """End every portal token of an application, after ``grace_seconds``."""
        c = t.app_tokens.c
        until = self.clock() + timedelta(seconds=grace_seconds)
        async with self.engine.begin() as conn:
            await conn.execute(
                t.app_tokens.update()
                .where(c.app_id == app_id, c.expires_at > until)
                .values(expires_at=until)
            )
        self._token_cache.clear()

    async def revoke_app_token(self, token: str) -> None:
        c = t.app_tokens.c
        async with self.engine.begin() as conn:
            await conn.execute(
                t.app_tokens.update()
                .where(c.token_hash == hash_token(token))
                .values(expires_at=self.clock())
            )
        self._token_cache.pop(hash_token(token), None)

    async def authenticate(self, token: str) -> Principal | None:
        """The principal a bearer token stands for, or None (unknown, revoked, expired)."""
        digest = hash_token(token)
        now_mono = asyncio.get_running_loop().time()
        cached = self._token_cache.get(digest)
        if cached and cached[0] > now_mono:
            principal = cached[1]
            if principal.expires_at is None or principal.expires_at > self.clock():
                return principal
        principal = await self._lookup_token(digest)
        if principal is None:
            self._token_cache.pop(digest, None)
            return None
        self._token_cache[digest] = (now_mono + CACHE_SECONDS, principal)
        return principal

    async def _lookup_token(self, digest: str) -> Principal | None:
        o, a = t.operator_tokens.c, t.app_tokens.c
        async with self.engine.connect() as conn:
            op = await conn.scalar(
                sa.select(o.id).where(o.token_hash == digest, o.revoked_at.is_(None))
            )
            if op is not None:
                return Principal(token_id=op)
            row = (
                await conn.execute(
                    sa.select(a.id, a.app_id, a.read_only, a.expires_at).where(
                        a.token_hash == digest, a.expires_at > self.clock()
                    )
                )
            ).first()
        if row is None:
            return None
        return Principal(
            token_id=row.id, app_id=row.app_id, read_only=row.read_only, expires_at=row.expires_at
        )
