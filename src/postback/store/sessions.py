"""Browser sessions of the portal and the dashboard, kept in the database.

The cookie holds only a random session id; the table keys it by hash, so neither the cookie
nor a dump of the table carries a bearer token or a live session. A session lasts while its
row does (logout deletes it) and while the token it was opened with is valid: revoking an
operator token or expiring an application's portal tokens ends their sessions at once, in
every process, because every page view reads the row and the token together."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from postback.store import schema as t
from postback.store.core import StoreCore
from postback.store.tokens import Principal

if TYPE_CHECKING:
    pass


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class WebSession:
    """An open session: its cookie value, the CSRF value its forms echo, and who it is."""

    id: str
    csrf: str
    principal: Principal


_s, _o, _a = t.web_sessions.c, t.operator_tokens.c, t.app_tokens.c
# One read per page view: the session and the token behind it, both still valid.
_LOOKUP = (
    sa.select(_s.csrf, _s.operator_token_id, _a.id, _a.app_id, _a.read_only, _a.expires_at)
    .select_from(
        t.web_sessions.outerjoin(
            t.operator_tokens,
            sa.and_(_o.id == _s.operator_token_id, _o.revoked_at.is_(None)),
        ).outerjoin(
            t.app_tokens,
            sa.and_(_a.id == _s.app_token_id, _a.expires_at > sa.bindparam("now")),
        )
    )
    .where(
        _s.id_hash == sa.bindparam("h"),
        _s.expires_at > sa.bindparam("now"),
        sa.or_(_o.id.is_not(None), _a.id.is_not(None)),
    )
)


class SessionsMixin(StoreCore):
    async def open_web_session(self, principal: Principal, ttl_seconds: float) -> WebSession:
        """A new session for an authenticated principal; expired rows are swept on the way."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        now = self.clock()
        operator = principal.is_operator
        async with self.engine.begin() as conn:
            await conn.execute(t.web_sessions.delete().where(_s.expires_at <= now))
            await conn.execute(
                t.web_sessions.insert().values(
                    id_hash=_digest(session_id),
                    operator_token_id=principal.token_id if operator else None,
                    app_token_id=None if operator else principal.token_id,
                    csrf=csrf,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_seconds),
                )
            )
        return WebSession(id=session_id, csrf=csrf, principal=principal)

    async def web_session(self, session_id: str | None) -> WebSession | None:
        """The open session with this id, or None (unknown, logged out, expired, or its
        token revoked or expired)."""
        if not session_id or len(session_id) > 128:
            return None
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(_LOOKUP, {"h": _digest(session_id), "now": self.clock()})
            ).first()
        if row is None:
            return None
        if row.operator_token_id is not None:
            principal = Principal(token_id=row.operator_token_id)
        else:
            principal = Principal(
                token_id=row.id,
                app_id=row.app_id,
                read_only=row.read_only,
                expires_at=row.expires_at,
            )
        return WebSession(id=session_id, csrf=row.csrf, principal=principal)

    async def end_web_session(self, session_id: str, *, revoke_app_token: bool = False) -> None:
        """Log out: the session's row goes; with ``revoke_app_token``, the portal token it
        was opened with ends too (as the API's logout ends a token)."""
        now = self.clock()
        digest = _digest(session_id)
        async with self.engine.begin() as conn:
            token_id = await conn.scalar(sa.select(_s.app_token_id).where(_s.id_hash == digest))
            await conn.execute(t.web_sessions.delete().where(_s.id_hash == digest))
            if revoke_app_token and token_id is not None:
                token_hash = await conn.scalar(sa.select(_a.token_hash).where(_a.id == token_id))
                await conn.execute(
                    t.app_tokens.update()
                    .where(_a.id == token_id, _a.expires_at > now)
                    .values(expires_at=now)
                )
                self._token_cache.pop(token_hash or "", None)
