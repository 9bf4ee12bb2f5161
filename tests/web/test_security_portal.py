"""Read-only portal tokens and secrets; per-application limits in the API and the portal
(issue 18, findings 7 and 9)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from svix.api import ApplicationIn, AppPortalAccessIn, EndpointIn
from svix.exceptions import HttpError

from tests.support.server import ServerHandle
from tests.web.test_web_http import csrf_of, portal_client


def _portal_token(server: ServerHandle, app_id: str, *, read_only: bool) -> str:
    access = AppPortalAccessIn(read_only=read_only)
    return server.svix().authentication.app_portal_access(app_id, access).token


def test_a_read_only_token_cannot_read_the_signing_secret(server: ServerHandle) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    ep = svix.endpoint.create(app.id, EndpointIn(url="http://127.0.0.1:9/h"))
    secret = svix.endpoint.get_secret(app.id, ep.id).key

    read_only = _portal_token(server, app.id, read_only=True)
    url = f"{server.url}/api/v1/app/{app.id}/endpoint/{ep.id}/secret"
    answer = httpx.get(url, headers={"authorization": f"Bearer {read_only}"}, timeout=30)
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden" and secret not in answer.text
    with pytest.raises(HttpError) as err:
        server.svix(read_only).endpoint.get_secret(app.id, ep.id)
    assert err.value.status_code == 403
    # It may still read the endpoint itself.
    assert server.svix(read_only).endpoint.get(app.id, ep.id).url == "http://127.0.0.1:9/h"

    writable = _portal_token(server, app.id, read_only=False)
    assert server.svix(writable).endpoint.get_secret(app.id, ep.id).key == secret


def test_the_portal_never_reveals_the_secret_to_a_read_only_session(
    server: ServerHandle,
) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    ep = svix.endpoint.create(app.id, EndpointIn(url="http://127.0.0.1:9/h"))
    secret = svix.endpoint.get_secret(app.id, ep.id).key

    read_only = portal_client(server, app.id, read_only=True)
    page = read_only.get(f"/portal/endpoints/{ep.id}?reveal=1")
    read_only.close()
    assert page.status_code == 200
    assert secret not in page.text and "?reveal=1" not in page.text
    writable = portal_client(server, app.id)
    page = writable.get(f"/portal/endpoints/{ep.id}?reveal=1")
    writable.close()
    assert secret in page.text and csrf_of(page.text)


def test_an_application_has_at_most_the_configured_number_of_endpoints(
    make_server: Callable[..., ServerHandle],
) -> None:
    server = make_server(max_endpoints_per_app=3)
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    other = svix.application.create(ApplicationIn(name="other"))
    made = [
        svix.endpoint.create(app.id, EndpointIn(url=f"http://127.0.0.1:9/{n}")) for n in range(3)
    ]
    with pytest.raises(HttpError) as err:
        svix.endpoint.create(app.id, EndpointIn(url="http://127.0.0.1:9/4"))
    assert err.value.status_code == 409 and "POSTBACK_MAX_ENDPOINTS_PER_APP" in err.value.detail
    auth = {"authorization": f"Bearer {server.token}"}
    upsert = httpx.put(
        f"{server.url}/api/v1/app/{app.id}/endpoint/new-uid",
        json={"url": "http://127.0.0.1:9/5"},
        headers=auth,
        timeout=30,
    )
    assert upsert.status_code == 409 and upsert.json()["code"] == "conflict"
    # Updating one that exists is not a new endpoint; another application has its own room.
    patched = httpx.patch(
        f"{server.url}/api/v1/app/{app.id}/endpoint/{made[0].id}",
        json={"description": "still fine"},
        headers=auth,
        timeout=30,
    )
    assert patched.status_code == 200
    svix.endpoint.create(other.id, EndpointIn(url="http://127.0.0.1:9/o"))

    # The portal honours the same limit.
    portal = portal_client(server, app.id)
    csrf = csrf_of(portal.get("/portal/endpoints/new").text)
    page = portal.post(
        "/portal/endpoints/new", data={"csrf": csrf, "url": "http://127.0.0.1:9/p", "scope": "all"}
    )
    assert page.status_code == 422 and "POSTBACK_MAX_ENDPOINTS_PER_APP" in page.text
    assert len(svix.endpoint.list(app.id).data) == 3

    svix.endpoint.delete(app.id, made[0].id)
    created = portal.post(
        "/portal/endpoints/new", data={"csrf": csrf, "url": "http://127.0.0.1:9/p", "scope": "all"}
    )
    portal.close()
    assert created.status_code == 303
    assert len(svix.endpoint.list(app.id).data) == 3


def test_the_default_endpoint_limit_is_generous() -> None:
    from postback.config import Settings

    assert Settings().max_endpoints_per_app == 1000
