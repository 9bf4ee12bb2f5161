"""Session cookies and CSRF tokens for the portal and the dashboard.

A session cookie (HttpOnly, SameSite=Strict) holds only a random session id; the session
itself lives in the database (``Store.open_web_session``), so logging out ends it
everywhere, and revoking or expiring the token it was opened with ends it too. The bearer
token is never put in a cookie. Each session carries a random CSRF value that every form
must echo."""

from __future__ import annotations

import hmac

PORTAL_COOKIE = "pb_portal"
DASHBOARD_COOKIE = "pb_dashboard"
# Forms shown before a session exists (logins) use a double-submit cookie instead.
LOGIN_CSRF_COOKIE = "pb_login_csrf"
PORTAL_LOGIN_CSRF_COOKIE = "pb_portal_login_csrf"
LANG_COOKIE = "pb_lang"
# How long a browser session lasts at most (its token may end it sooner).
SESSION_SECONDS = 86400


def same(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
