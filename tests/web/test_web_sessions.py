"""Browser sessions are server-side: the cookie names a session, never carries a token, and
logging out, revoking the operator token or expiring the portal tokens ends the session in
every process that shares the database."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
from collections.abc import Callable

import httpx
import sqlalchemy as sa

from postback.store import schema as t
from postback.store.store import Store
from tests.support.server import ServerHandle
from tests.web.test_web_http import csrf_of, dashboard_client, portal_client


def _cookie(client: httpx.Client, name: str) -> str:
    return next(c.value for c in client.cookies.jar if c.name == name)


def _decodings(value: str) -> list[bytes]:
    """The cookie and whatever its parts decode to as base64: a token hidden in an encoded
    (signed, not encrypted) cookie shows here."""
    found = [value.encode()]
    for part in value.split("."):
        for pad in ("", "=", "=="):
            with contextlib.suppress(binascii.Error, ValueError):
                found.append(base64.urlsafe_b64decode(part + pad))
    return found


def _opens(server: ServerHandle, name: str, path: str, cookie: str) -> bool:
    """Whether a fresh browser carrying only this cookie is shown the page."""
    client = httpx.Client(base_url=server.url, timeout=30)
    client.cookies.set(name, cookie, path=path.rsplit("/", 1)[0] or "/")
    return client.get(path).status_code == 200


def _app(server: ServerHandle, name: str) -> str:
    from svix.api import ApplicationIn

    return server.svix().application.create(ApplicationIn(name=name)).id


def _logout(client: httpx.Client, page: str, action: str) -> None:
    answer = client.post(action, data={"csrf": csrf_of(client.get(page).text)})
    assert answer.status_code == 303


def test_the_dashboard_cookie_holds_no_token_and_logout_ends_it(server: ServerHandle) -> None:
    client = dashboard_client(server)
    cookie = _cookie(client, "pb_dashboard")
    assert all(server.token.encode() not in text for text in _decodings(cookie))
    assert _opens(server, "pb_dashboard", "/dashboard/", cookie)
    _logout(client, "/dashboard/", "/dashboard/logout")
    assert not _opens(server, "pb_dashboard", "/dashboard/", cookie)
    # The operator token itself stays: it is the operator's API key.
    assert server.svix().application.list().data is not None


def test_revoking_the_operator_token_ends_its_dashboard_sessions(server: ServerHandle) -> None:
    async def create(store: Store) -> tuple[str, str]:
        return await store.create_operator_token("browser")

    token_id, token = server.call(create)
    client = httpx.Client(base_url=server.url, timeout=30)
    page = client.get("/dashboard/login")
    answer = client.post("/dashboard/login", data={"token": token, "csrf": csrf_of(page.text)})
    assert answer.headers["location"] == "/dashboard/"
    cookie = _cookie(client, "pb_dashboard")
    assert _opens(server, "pb_dashboard", "/dashboard/", cookie)

    async def revoke(store: Store) -> None:
        await store.revoke_operator_token(token_id)

    server.call(revoke)
    assert not _opens(server, "pb_dashboard", "/dashboard/", cookie)
    # Another operator's session is not touched.
    assert _opens(
        server, "pb_dashboard", "/dashboard/", _cookie(dashboard_client(server), "pb_dashboard")
    )


def test_the_portal_cookie_holds_no_token_and_logout_ends_it(server: ServerHandle) -> None:
    from svix.api import AppPortalAccessIn

    app_id = _app(server, "portal logout")
    token = server.svix().authentication.app_portal_access(app_id, AppPortalAccessIn()).token
    client = httpx.Client(base_url=server.url, timeout=30)
    entry = client.get("/portal/")
    client.post("/portal/session", data={"token": token, "csrf": csrf_of(entry.text)})
    cookie = _cookie(client, "pb_portal")
    assert all(token.encode() not in text for text in _decodings(cookie))
    assert _opens(server, "pb_portal", "/portal/endpoints", cookie)
    _logout(client, "/portal/endpoints", "/portal/logout")
    assert not _opens(server, "pb_portal", "/portal/endpoints", cookie)
    # The portal token ended with the session, as before.
    assert server.call(lambda s: s.authenticate(token)) is None


def test_expire_all_ends_open_portal_sessions(server: ServerHandle) -> None:
    app_id = _app(server, "expire all")
    cookies = [_cookie(portal_client(server, app_id), "pb_portal") for _ in range(2)]
    other = _cookie(portal_client(server, _app(server, "other")), "pb_portal")
    assert all(_opens(server, "pb_portal", "/portal/endpoints", c) for c in cookies)
    answer = httpx.post(
        f"{server.url}/api/v1/auth/app/{app_id}/expire-all",
        headers={"Authorization": f"Bearer {server.token}"},
        json={},
    )
    assert answer.status_code == 204
    assert not any(_opens(server, "pb_portal", "/portal/endpoints", c) for c in cookies)
    assert _opens(server, "pb_portal", "/portal/endpoints", other)


def test_sessions_hold_across_processes_and_end_in_all_of_them(
    make_server: Callable[..., ServerHandle],
) -> None:
    """Two API processes on one database: a session opened on one works on the other, and
    a logout on the other ends it on the first."""
    first, second = make_server(), make_server()
    client = dashboard_client(first)
    cookie = _cookie(client, "pb_dashboard")
    assert _opens(second, "pb_dashboard", "/dashboard/", cookie)
    on_second = httpx.Client(base_url=second.url, timeout=30)
    on_second.cookies.set("pb_dashboard", cookie, path="/dashboard")
    _logout(on_second, "/dashboard/", "/dashboard/logout")
    assert not _opens(first, "pb_dashboard", "/dashboard/", cookie)


def test_the_sessions_table_keeps_only_a_hash_of_the_cookie(server: ServerHandle) -> None:
    cookie = _cookie(dashboard_client(server), "pb_dashboard")

    async def rows(store: Store) -> list[dict[str, object]]:
        async with store.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(sa.select(t.web_sessions))]

    stored = server.call(rows)
    assert hashlib.sha256(cookie.encode()).hexdigest() in {r["id_hash"] for r in stored}
    assert all(cookie not in str(r.values()) for r in stored)
    assert all(server.token not in str(r.values()) for r in stored)
