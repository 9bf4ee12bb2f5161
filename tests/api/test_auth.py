"""Tokens and tenant isolation, route by route over the whole API (the list of routes comes
from the app itself, so a new route cannot escape these checks)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import pytest
from svix.api import ApplicationIn, AppPortalAccessIn, EndpointIn, EventTypeIn, MessageIn
from svix.exceptions import HttpError

from tests.support.polling import eventually
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle

MISSING_APP = "app_" + "0" * 26
# Routes under an application that stay the operator's even for that application's portal.
OPERATOR_ONLY = {
    ("PUT", "/api/v1/app/{app_id}"),
    ("PATCH", "/api/v1/app/{app_id}"),
    ("DELETE", "/api/v1/app/{app_id}"),
    ("POST", "/api/v1/auth/app-portal-access/{app_id}"),
    ("POST", "/api/v1/auth/app/{app_id}/expire-all"),
}


@dataclass
class Tenant:
    app_id: str
    endpoint_id: str
    msg_id: str
    attempt_id: str


def _tenant(server: ServerHandle, receiver: Receiver, name: str) -> Tenant:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name=name, uid=name))
    ep = svix.endpoint.create(app.id, EndpointIn(url=receiver.route(f"/{name}", ok())))
    msg = svix.message.create(app.id, MessageIn(event_type="purchase.approved", payload={}))
    attempts = eventually(
        lambda: svix.message_attempt.list_by_msg(app.id, msg.id).data, what="an attempt"
    )
    return Tenant(app.id, ep.id, msg.id, attempts[0].id)


@dataclass(frozen=True)
class Route:
    path: str


def _path(route: Route, t: Tenant) -> str:
    return route.path.format(
        app_id=t.app_id,
        endpoint_id=t.endpoint_id,
        msg_id=t.msg_id,
        attempt_id=t.attempt_id,
        event_type_name="purchase.approved",
        task_id="qtask_" + "0" * 26,
    )


def _routes(server: ServerHandle) -> list[tuple[str, Route]]:
    """Every documented route of the running app: the OpenAPI document is generated from the
    router table, so a route added later is checked here without editing this test."""
    spec = httpx.get(server.url + "/openapi.json", timeout=60).json()  # built on first use
    found = [
        (method.upper(), Route(path))
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    # Destructive calls last, so every other call still finds what it addresses; of those,
    # the deeper paths first (an attempt's content, an endpoint's mtls, before the endpoint).
    order = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
    found.sort(
        key=lambda mr: (
            mr[1].path.endswith("/logout"),
            order[mr[0]],
            -mr[1].path.count("/") if mr[0] == "DELETE" else 0,
        )
    )
    assert len(found) > 30  # the whole API, not a sample
    return found


def test_every_route_isolates_tenants(server: ServerHandle) -> None:
    with Receiver() as receiver:
        mine = _tenant(server, receiver, "mine")
        theirs = _tenant(server, receiver, "theirs")
    svix = server.svix()
    svix.event_type.create(EventTypeIn(name="purchase.approved", description="Paid"))
    token = svix.authentication.app_portal_access(mine.app_id, AppPortalAccessIn()).token
    expired, _ = server.call(lambda s: s.create_app_token(mine.app_id, -1))
    scoped = {"authorization": f"Bearer {token}"}
    client = httpx.Client(base_url=server.url, timeout=10)

    checked = 0
    for method, route in _routes(server):
        if route.path.startswith("/api/v1/health"):
            continue  # open to anyone: a load balancer's probe carries no token
        their_path = _path(route, theirs)
        # No token, a wrong one, an expired one: 401 everywhere.
        for headers in (
            {},
            {"authorization": "Bearer pb_nope"},
            {"authorization": f"Bearer {expired}"},
        ):
            r = client.request(method, their_path, headers=headers, json={})
            assert r.status_code == 401, (method, route.path, headers, r.text)

        r = client.request(method, their_path, headers=scoped, json={})
        if "{app_id}" in route.path:
            # Another tenant's application looks exactly like one that does not exist.
            assert r.status_code == 404, (method, route.path, r.text)
            missing = client.request(
                method, their_path.replace(theirs.app_id, MISSING_APP), headers=scoped, json={}
            )
            assert missing.status_code == 404
            assert r.text.replace(theirs.app_id, "X") == missing.text.replace(MISSING_APP, "X")
            # Only the status: a live stream (events/stream) never ends by itself.
            with client.stream(method, _path(route, mine), headers=scoped, json={}) as own:
                status = own.status_code
            if (method, route.path) in OPERATOR_ONLY:
                assert status == 403, (method, route.path)
            else:
                assert status not in (401, 403, 404), (method, route.path)
        elif route.path.startswith("/api/v1/event-type") and method == "GET":
            assert r.status_code == 200, (method, route.path, r.text)  # the catalog is readable
        elif route.path.endswith("/logout"):
            assert r.status_code == 204
            assert (
                client.get(
                    _path(route, mine).replace("/auth/logout", f"/app/{mine.app_id}"),
                    headers=scoped,
                ).status_code
                == 401
            )
        else:
            assert r.status_code == 403, (method, route.path, r.text)
        checked += 1
    assert checked > 30
    # The operator still sees both tenants: nothing above touched the other one.
    assert svix.endpoint.get(theirs.app_id, theirs.endpoint_id).id == theirs.endpoint_id


def test_read_only_portal_tokens_cannot_write(server: ServerHandle) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="ro"))
    access = svix.authentication.app_portal_access(app.id, AppPortalAccessIn(read_only=True))
    assert access.url.endswith(f"#token={access.token}")
    portal = server.svix(access.token)
    assert portal.endpoint.list(app.id).data == []
    with pytest.raises(HttpError) as err:
        portal.endpoint.create(app.id, EndpointIn(url="https://e.example/h"))
    assert err.value.status_code == 403


def test_expire_all_ends_portal_tokens(server: ServerHandle) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="x"))
    access = svix.authentication.app_portal_access(app.id, AppPortalAccessIn(expiry=3600))
    portal = server.svix(access.token)
    assert portal.application.get(app.id).id == app.id
    from svix.api import ApplicationTokenExpireIn

    svix.authentication.expire_all(app.id, ApplicationTokenExpireIn())
    time.sleep(0.05)
    with pytest.raises(HttpError) as err:
        portal.application.get(app.id)
    assert err.value.status_code == 401
