"""The portal's and the dashboard's forms refuse exactly what the API refuses, with the
reason shown in the form; a NUL character anywhere is a clear message, never a database
error (issue 18, finding 11)."""

from __future__ import annotations

import html
from typing import Any

import httpx
from svix.api import ApplicationIn, EndpointIn

from postback.store.store import Store
from postback.web.i18n import TEXTS
from postback.web.validation import FIELD_MESSAGES, NUL_MESSAGE, OTHER_MESSAGE
from tests.support.server import ServerHandle
from tests.web.test_web_http import csrf_of, dashboard_client, portal_client

HOOK = "https://shop.example/hook"
SERVER_ERRORS = ("Traceback", "asyncpg", "sqlite3", "psycopg", "Internal Server Error")


def _endpoint_form(portal: httpx.Client, **fields: Any) -> dict[str, Any]:
    csrf = csrf_of(portal.get("/portal/endpoints/new").text)
    return {"csrf": csrf, "url": HOOK, "description": "", "scope": "all"} | fields


def _refused(answer: httpx.Response, *words: str) -> str:
    text = html.unescape(answer.text)
    assert answer.status_code == 422, (answer.status_code, text[:500])
    assert not any(e in text for e in SERVER_ERRORS), text[:2000]
    for w in words:
        assert w in text, (w, text[:2000])
    return text


def _api(server: ServerHandle, method: str, path: str, body: dict[str, Any]) -> int:
    auth = {"authorization": f"Bearer {server.token}"}
    return httpx.request(method, server.url + path, json=body, headers=auth, timeout=30).status_code


def _endpoint_count(server: ServerHandle, app_id: str) -> int:
    async def count(store: Store) -> int:
        return len(await store.endpoint_health(app_id))

    return server.call(count)


def test_the_endpoint_form_applies_the_api_limits(server: ServerHandle) -> None:
    app_id = server.svix().application.create(ApplicationIn(name="forms")).id
    portal = portal_client(server, app_id)
    api = f"/api/v1/app/{app_id}/endpoint"
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        # (form fields, the same as the API's JSON, the message in the form)
        (
            {"url": HOOK + "/" + "a" * 60_000},
            {"url": HOOK + "/" + "a" * 60_000},
            "Enter a full http:// or https:// URL.",
        ),
        (
            {"description": "d" * 500_000},
            {"url": HOOK, "description": "d" * 500_000},
            "The description is too long.",
        ),
        (
            {"event_types": [f"e.{i}" for i in range(1990)]},
            {"url": HOOK, "filterTypes": [f"e.{i}" for i in range(1990)]},
            "Choose at most 1000 event types",
        ),
        ({"event_types": ["../../x"]}, {"url": HOOK, "filterTypes": ["../../x"]}, "at most 1000"),
        ({"event_types": ["a/b"]}, {"url": HOOK, "filterTypes": ["a/b"]}, "at most 1000"),
        (
            {"scope": "one", "product": "a/b"},
            {"url": HOOK, "product": "a/b"},
            "Name the product with letters",
        ),
        ({"rate_limit": "100001"}, {"url": HOOK, "rateLimit": 100_001}, "The rate limit is"),
        ({"headers": "X-Bad Name: 1"}, {"url": HOOK, "headers": {"X-Bad Name": "1"}}, "header"),
    ]
    for fields, body, message in cases:
        answer = portal.post("/portal/endpoints/new", data=_endpoint_form(portal, **fields))
        text = _refused(answer, message)
        assert 'name="url"' in text  # the form again, to correct
        assert _api(server, "POST", api, body) == 422, body.keys()
    assert _endpoint_count(server, app_id) == 0
    # What both accept, both accept.
    good = portal.post("/portal/endpoints/new", data=_endpoint_form(portal, event_types=["e.1"]))
    assert good.status_code == 303
    ep_id = good.headers["location"].split("/")[-1].split("?")[0]
    # Editing is held to the same limits.
    edit = portal.post(
        f"/portal/endpoints/{ep_id}/edit",
        data=_endpoint_form(portal, description="d" * 5000),
    )
    _refused(edit, "The description is too long.")
    assert server.svix().endpoint.get(app_id, ep_id).description == ""


def test_a_nul_in_any_form_field_is_a_clear_message(server: ServerHandle) -> None:
    app_id = server.svix().application.create(ApplicationIn(name="nul")).id
    portal = portal_client(server, app_id)
    nul = "a\x00b"
    for fields, message in [
        # The API refuses control characters in a URL before it looks for NUL in text.
        ({"url": HOOK + "/" + nul}, FIELD_MESSAGES["url"]),
        ({"description": nul}, NUL_MESSAGE),
        ({"event_types": [nul]}, "at most 1000"),
        ({"scope": "one", "product": nul}, "Name the product"),
        ({"headers": f"X-Key: {nul}"}, "header"),
        ({"payload_filter": '{"data.x": "a\\u0000b"}'}, NUL_MESSAGE),
        ({"projection_mode": "include", "projection": f"/data/{nul}"}, NUL_MESSAGE),
    ]:
        answer = portal.post("/portal/endpoints/new", data=_endpoint_form(portal, **fields))
        _refused(answer, message)
    assert _endpoint_count(server, app_id) == 0
    # A form whose values are not all checked by a model refuses any NUL at once.
    ep = server.svix().endpoint.create(app_id, EndpointIn(url=HOOK)).id
    csrf = csrf_of(portal.get(f"/portal/endpoints/{ep}").text)
    for path, data in [
        (f"/portal/endpoints/{ep}/test", {"event_type": nul}),
        (f"/portal/endpoints/{ep}/recover", {"since": nul}),
    ]:
        _refused(portal.post(path, data={"csrf": csrf} | data), NUL_MESSAGE)
    entry = httpx.Client(base_url=server.url, timeout=30)
    login = entry.get("/portal/")
    answer = entry.post("/portal/session", data={"csrf": csrf_of(login.text), "token": nul})
    _refused(answer, NUL_MESSAGE)
    # The Spanish page says it in Spanish.
    spanish = portal.post(
        "/portal/endpoints/new",
        data=_endpoint_form(portal, description=nul),
        headers={"accept-language": "es"},
    )
    _refused(spanish, "El texto no puede contener el carácter NUL.")


def test_the_event_type_form_applies_the_api_limits(server: ServerHandle) -> None:
    dash = dashboard_client(server)

    def post(path: str, **fields: str) -> httpx.Response:
        csrf = csrf_of(dash.get("/dashboard/event-types/new").text)
        return dash.post(path, data={"csrf": csrf} | fields)

    name_message = "Name the event type with letters"
    for name in ("../../x", "a/b", "with space", "x" * 257, "a\x00b"):
        _refused(post("/dashboard/event-types/new", name=name), name_message)
        assert _api(server, "POST", "/api/v1/event-type", {"name": name}) == 422
    _refused(
        post("/dashboard/event-types/new", name="big.one", description="d" * 500_000),
        "The description is too long.",
    )
    too_long = {"name": "b", "description": "d" * 5000}
    assert _api(server, "POST", "/api/v1/event-type", too_long) == 422
    _refused(post("/dashboard/event-types/new", name="nul.one", description="a\x00b"), NUL_MESSAGE)
    _refused(
        post("/dashboard/event-types/new", name="nul.two", schema='{"title": "a\\u0000b"}'),
        NUL_MESSAGE,
    )
    names = [et.name for et in server.svix().event_type.list().data]
    assert names == []
    # A valid one is created, and editing it is held to the same limits.
    assert post("/dashboard/event-types/new", name="order.paid").status_code == 303
    _refused(post("/dashboard/event-types/order.paid", description="d" * 5000), "too long")
    _refused(post("/dashboard/event-types/order.paid", description="a\x00b"), NUL_MESSAGE)
    assert server.svix().event_type.get("order.paid").description == ""


def test_every_form_message_is_translated() -> None:
    for text in [*FIELD_MESSAGES.values(), NUL_MESSAGE, OTHER_MESSAGE]:
        assert text in TEXTS, text
