"""The portal and dashboard over plain HTTP against a running server: sessions, tenant
isolation, CSRF, expired tokens, and every page answering without a server error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from postback.store.store import Store
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle, server_settings


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """One server for the module, on SQLite: every test here reads pages, none needs a
    fresh database."""
    path: Path = tmp_path_factory.mktemp("web") / "postback.db"
    handle = ServerHandle(server_settings(f"sqlite:///{path}")).start()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        r.route("/hook", ok())
        yield r


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def portal_client(server: ServerHandle, app_id: str, *, read_only: bool = False) -> httpx.Client:
    """A browser-like client with an open portal session for ``app_id``."""
    from svix.api import AppPortalAccessIn

    access = AppPortalAccessIn(read_only=read_only)
    token = server.svix().authentication.app_portal_access(app_id, access).token
    client = httpx.Client(base_url=server.url, timeout=30)
    entry = client.get("/portal/")
    assert entry.status_code == 200
    answer = client.post("/portal/session", data={"token": token, "csrf": csrf_of(entry.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/endpoints"
    return client


def dashboard_client(server: ServerHandle) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=30)
    page = client.get("/dashboard/login")
    answer = client.post(
        "/dashboard/login", data={"token": server.token, "csrf": csrf_of(page.text)}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/"
    return client


def _access() -> object:
    from svix.api import AppPortalAccessIn

    return AppPortalAccessIn()


def _app(server: ServerHandle, name: str) -> str:
    from svix.api import ApplicationIn

    return server.svix().application.create(ApplicationIn(name=name)).id


def _endpoint(server: ServerHandle, app_id: str, url: str) -> str:
    from svix.api import EndpointIn

    return server.svix().endpoint.create(app_id, EndpointIn(url=url)).id


def test_portal_session_cookie_is_httponly_and_strict(web_server: ServerHandle) -> None:
    client = portal_client(web_server, _app(web_server, "cookie"))
    cookie = next(c for c in client.cookies.jar if c.name == "pb_portal")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite", "").lower() == "strict"
    assert cookie.path == "/portal"
    assert client.get("/portal/endpoints").status_code == 200


def test_a_portal_session_cannot_see_another_application(
    web_server: ServerHandle, receiver: Receiver
) -> None:
    app_a, app_b = _app(web_server, "A"), _app(web_server, "B")
    ep_b = _endpoint(web_server, app_b, receiver.url + "/hook")
    from svix.api import MessageIn

    msg_b = web_server.svix().message.create(app_b, MessageIn(event_type="x.y", payload={})).id
    client_a = portal_client(web_server, app_a)
    assert ep_b not in client_a.get("/portal/endpoints").text
    for path in (
        f"/portal/endpoints/{ep_b}",
        f"/portal/endpoints/{ep_b}/edit",
        f"/portal/endpoints/{ep_b}/delete",
        f"/portal/messages/{msg_b}",
    ):
        assert client_a.get(path).status_code == 404, path
    csrf = csrf_of(client_a.get("/portal/endpoints/new").text)
    for path in (
        f"/portal/endpoints/{ep_b}/disable",
        f"/portal/endpoints/{ep_b}/delete",
        f"/portal/endpoints/{ep_b}/rotate",
        f"/portal/messages/{msg_b}/resend/{ep_b}",
    ):
        assert client_a.post(path, data={"csrf": csrf}).status_code == 404, path
    # B's endpoint is untouched.
    ep = web_server.svix().endpoint.get(app_b, ep_b)
    assert ep.disabled is False


def test_forms_without_a_valid_csrf_token_are_refused(
    web_server: ServerHandle, receiver: Receiver
) -> None:
    app_id = _app(web_server, "csrf")
    ep = _endpoint(web_server, app_id, receiver.url + "/hook")
    client = portal_client(web_server, app_id)
    for data in ({}, {"csrf": "forged"}):
        assert client.post(f"/portal/endpoints/{ep}/disable", data=data).status_code == 403
        new = client.post("/portal/endpoints/new", data=data | {"url": receiver.url + "/x"})
        assert new.status_code == 403
    assert web_server.svix().endpoint.get(app_id, ep).disabled is False
    # The dashboard checks its own session's token, not the portal's.
    dash = dashboard_client(web_server)
    portal_csrf = csrf_of(client.get("/portal/endpoints").text)
    refused = dash.post("/dashboard/event-types/new", data={"csrf": portal_csrf, "name": "a.b"})
    assert refused.status_code == 403
    # A login form without the double-submit cookie's value is refused too.
    fresh = httpx.Client(base_url=web_server.url, timeout=30)
    assert fresh.post("/dashboard/login", data={"token": web_server.token}).status_code == 403


def test_expired_or_invalid_tokens_lead_to_the_login_or_error_page(
    web_server: ServerHandle,
) -> None:
    client = httpx.Client(base_url=web_server.url, timeout=30)
    entry = client.get("/portal/")
    bad = client.post("/portal/session", data={"token": "pbapp_nope", "csrf": csrf_of(entry.text)})
    assert bad.status_code == 303 and bad.headers["location"] == "/portal/?error=invalid"
    assert "not valid" in client.get(bad.headers["location"]).text
    # No session at all, or a forged cookie: sent to the portal's error page.
    for cookie in (None, "forged.value"):
        c = httpx.Client(base_url=web_server.url, timeout=30)
        if cookie:
            c.cookies.set("pb_portal", cookie, path="/portal")
        answer = c.get("/portal/endpoints")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/portal/?error=expired"
    # A session whose token expires is over at once.
    app_id = _app(web_server, "expiring")
    portal = portal_client(web_server, app_id)
    assert portal.get("/portal/endpoints").status_code == 200

    async def expire(store: Store) -> None:
        await store.expire_app_tokens(app_id)

    web_server.call(expire)
    answer = portal.get("/portal/endpoints")
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/?error=expired"
    # The dashboard sends a visitor without a session to its login form.
    assert client.get("/dashboard/").headers["location"] == "/dashboard/login"
    wrong = dashboard_client_with(web_server, "pb_wrong")
    assert wrong.headers["location"] == "/dashboard/login?error=invalid"


def dashboard_client_with(server: ServerHandle, token: str) -> httpx.Response:
    client = httpx.Client(base_url=server.url, timeout=30)
    page = client.get("/dashboard/login")
    return client.post("/dashboard/login", data={"token": token, "csrf": csrf_of(page.text)})


def test_a_portal_token_does_not_open_the_dashboard(web_server: ServerHandle) -> None:
    token = (
        web_server.svix()
        .authentication.app_portal_access(_app(web_server, "not operator"), _access())
        .token
    )
    answer = dashboard_client_with(web_server, token)
    assert answer.headers["location"] == "/dashboard/login?error=invalid"


def test_no_page_answers_with_a_server_error(web_server: ServerHandle, receiver: Receiver) -> None:
    from svix.api import EventTypeIn, MessageIn

    svix = web_server.svix()
    svix.event_type.create(
        EventTypeIn(
            name="order.paid",
            description="An order was paid",
            schemas={
                "1": {
                    "type": "object",
                    "properties": {"amount": {"type": "integer"}},
                    "examples": [{"amount": 5}],
                }
            },
        )
    )
    app_id = _app(web_server, "every page")
    ep = _endpoint(web_server, app_id, receiver.url + "/hook")
    msg = svix.message.create(app_id, MessageIn(event_type="order.paid", payload={"amount": 1}))
    portal = portal_client(web_server, app_id)
    dash = dashboard_client(web_server)
    portal_pages = [
        "/portal/endpoints",
        "/portal/endpoints/new",
        f"/portal/endpoints/{ep}",
        f"/portal/endpoints/{ep}?reveal=1&event_type=order.paid",
        f"/portal/endpoints/{ep}?event_type=missing",
        f"/portal/endpoints/{ep}/edit",
        f"/portal/endpoints/{ep}/delete",
        "/portal/messages",
        "/portal/messages?status=fail&event_type=order.paid&since=2020-01-01&until=2099-01-01",
        "/portal/messages?since=garbage&status=nonsense",
        f"/portal/messages/{msg.id}",
        "/portal/catalog",
    ]
    for path in portal_pages:
        answer = portal.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
    for path in ("/portal/endpoints/ep_doesnotexist", "/portal/messages/msg_doesnotexist"):
        assert portal.get(path).status_code == 404
    dash_pages = [
        "/dashboard/",
        "/dashboard/event-types",
        "/dashboard/event-types/new",
        "/dashboard/event-types/order.paid",
        f"/dashboard/search?q={msg.id}",
        "/dashboard/search?q=",
        "/dashboard/login",
    ]
    for path in dash_pages:
        answer = dash.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
    assert dash.get("/dashboard/event-types/missing").status_code == 404
    # Bad form input is a page saying what is wrong, not a crash.
    csrf = csrf_of(portal.get("/portal/endpoints/new").text)
    for data in (
        {"url": "not a url"},
        {"url": receiver.url, "rate_limit": "-3"},
        {"url": receiver.url, "headers": "no colon here"},
        {"url": receiver.url, "headers": "webhook-id: mine"},
        {"url": receiver.url, "scope": "one", "product": ""},
    ):
        assert portal.post("/portal/endpoints/new", data=data | {"csrf": csrf}).status_code == 422
    bad_since = portal.post(f"/portal/endpoints/{ep}/recover", data={"csrf": csrf, "since": "x"})
    assert bad_since.status_code == 422
    dcsrf = csrf_of(dash.get("/dashboard/event-types/new").text)
    for data in (
        {"name": "has space"},
        {"name": "a.b", "schema": "{nope"},
        {"name": "a", "schema": "[1]"},
    ):
        answer = dash.post("/dashboard/event-types/new", data=data | {"csrf": dcsrf})
        assert answer.status_code == 422, data
    dup = dash.post("/dashboard/event-types/new", data={"name": "order.paid", "csrf": dcsrf})
    assert dup.status_code == 409


def test_a_read_only_portal_token_may_look_but_not_change(
    web_server: ServerHandle, receiver: Receiver
) -> None:
    app_id = _app(web_server, "read only")
    ep_id = _endpoint(web_server, app_id, receiver.url + "/hook")
    client = portal_client(web_server, app_id, read_only=True)
    page = client.get(f"/portal/endpoints/{ep_id}")
    assert page.status_code == 200
    assert "/disable" not in page.text and "/rotate" not in page.text  # no write controls
    assert "Add endpoint" not in client.get("/portal/endpoints").text
    answer = client.post(f"/portal/endpoints/{ep_id}/disable", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 403
    assert web_server.svix().endpoint.get(app_id, ep_id).disabled is False
    # Leaving is not a write.
    out = client.post("/portal/logout", data={"csrf": csrf_of(page.text)})
    assert out.headers["location"] == "/portal/?error=logged-out"
    assert client.get("/portal/endpoints").headers["location"] == "/portal/?error=expired"


def test_pages_are_not_cached_framed_or_open_to_foreign_scripts(web_server: ServerHandle) -> None:
    page = httpx.get(web_server.url + "/dashboard/login", timeout=30)
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script" not in page.text  # the only script is the portal's entry page, a file


def test_after_login_the_portal_goes_only_to_its_own_pages(web_server: ServerHandle) -> None:
    from svix.api import AppPortalAccessIn

    app_id = _app(web_server, "next page")
    for wanted, landed in (
        ("/portal/catalog", "/portal/catalog"),
        ("https://evil.example/portal/", "/portal/endpoints"),
        ("//evil.example/portal/", "/portal/endpoints"),
        ("/dashboard/", "/portal/endpoints"),
    ):
        token = web_server.svix().authentication.app_portal_access(app_id, AppPortalAccessIn())
        client = httpx.Client(base_url=web_server.url, timeout=30)
        csrf = csrf_of(client.get("/portal/").text)
        answer = client.post(
            "/portal/session", data={"token": token.token, "csrf": csrf, "next": wanted}
        )
        assert answer.headers["location"] == landed, wanted


def test_logging_out_of_the_portal_ends_its_link(web_server: ServerHandle) -> None:
    app_id = _app(web_server, "leaving")
    token = web_server.svix().authentication.app_portal_access(app_id, _access()).token

    def open_session() -> tuple[httpx.Client, httpx.Response]:
        client = httpx.Client(base_url=web_server.url, timeout=30)
        csrf = csrf_of(client.get("/portal/").text)
        return client, client.post("/portal/session", data={"token": token, "csrf": csrf})

    client, opened = open_session()
    assert opened.headers["location"] == "/portal/endpoints"
    csrf = csrf_of(client.get("/portal/endpoints").text)
    assert client.post("/portal/logout", data={"csrf": csrf}).status_code == 303
    _, again = open_session()
    assert again.headers["location"] == "/portal/?error=invalid"
    # The operator's dashboard logout leaves the operator token working.
    dash = dashboard_client(web_server)
    dash.post("/dashboard/logout", data={"csrf": csrf_of(dash.get("/dashboard/").text)})
    assert dash.get("/dashboard/").headers["location"] == "/dashboard/login"
    assert dashboard_client(web_server).get("/dashboard/").status_code == 200
