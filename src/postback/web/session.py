"""Signed session cookies and CSRF tokens for the portal and the dashboard.

A session cookie holds the bearer token it was opened with (HttpOnly, SameSite=Strict), so
every page checks it again with ``Store.authenticate``: revoking or expiring the token ends
the session. Each session carries a random CSRF value that every form must echo."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

from postback.config import Settings
from postback.store.secretbox import key_file_for, load_or_create_key_file, parse_key

PORTAL_COOKIE = "pb_portal"
DASHBOARD_COOKIE = "pb_dashboard"
# Forms shown before a session exists (logins) use a double-submit cookie instead.
LOGIN_CSRF_COOKIE = "pb_login_csrf"
LANG_COOKIE = "pb_lang"


def session_key(settings: Settings) -> bytes:
    """The key that signs session cookies, derived from the secret key so every process of
    a deployment accepts the others' cookies."""
    if settings.secret_key:
        raw = parse_key(settings.secret_key)
    elif settings.is_sqlite:
        raw = load_or_create_key_file(key_file_for(settings.database_url))[0]
    else:  # unreachable in practice: PostgreSQL deployments must set a secret key
        raw = secrets.token_bytes(32)
    return hmac.new(raw, b"postback web sessions", hashlib.sha256).digest()


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str


class Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, body: bytes) -> str:
        digest = hmac.new(self._key, body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def dump(self, session: Session) -> str:
        body = base64.urlsafe_b64encode(orjson.dumps({"t": session.token, "c": session.csrf}))
        return f"{body.decode()}.{self._mac(body)}"

    def load(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        body, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(body.encode())):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body.encode()))
            return Session(token=str(data["t"]), csrf=str(data["c"]))
        except (ValueError, KeyError, TypeError):
            return None


def new_session(token: str) -> Session:
    return Session(token=token, csrf=secrets.token_urlsafe(24))


def same(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
