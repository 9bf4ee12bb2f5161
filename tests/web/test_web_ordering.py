"""Ordered delivery's forms without a browser: the dashboard's event-type form keeps the
ordering key path (and says so in Spanish when it is not a path)."""

from __future__ import annotations

from typing import Any

import httpx

from postback.web.session import LANG_COOKIE
from tests.support.server import ServerHandle
from tests.web import test_web_http
from tests.web.test_web_http import csrf_of, dashboard_client

web_server = test_web_http.web_server


def test_the_event_type_form_keeps_the_ordering_key_path(web_server: ServerHandle) -> None:
    dash = dashboard_client(web_server)
    csrf = csrf_of(dash.get("/dashboard/event-types/new").text)
    created = dash.post(
        "/dashboard/event-types/new",
        data={"csrf": csrf, "name": "subscription.renewed", "ordering_key_path": "data.sub.id"},
    )
    assert created.status_code == 303
    stored = _get(web_server, "/api/v1/event-type/subscription.renewed")
    assert stored["orderingKeyPath"] == "data.sub.id"
    form = dash.get("/dashboard/event-types/subscription.renewed").text
    assert 'name="ordering_key_path" value="data.sub.id"' in form
    dash.cookies.set(LANG_COOKIE, "es")
    refused = dash.post(
        "/dashboard/event-types/subscription.renewed",
        data={"csrf": csrf, "ordering_key_path": "data..id"},
    )
    assert refused.status_code == 422
    assert "Escriba el lugar de la clave de orden" in refused.text


def _get(server: ServerHandle, path: str) -> Any:
    headers = {"authorization": f"Bearer {server.token}"}
    return httpx.get(server.url + path, headers=headers, timeout=30).json()
