"""OAuth2 client credentials (RFC 6749 §4.4) against a real aiohttp token server issuing
expiring tokens and a receiver that accepts only live ones: one token shared by concurrent
deliveries, renewed when it expires, refreshed once on a 401, token endpoint failures
recorded with their reason; and the API's, portal's and CLI's side of it."""

from __future__ import annotations

import asyncio
import base64
import html
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote

import httpx
import pytest
from aiohttp import web
from svix.api import ApplicationIn, MessageIn

from postback.credentials import OAuthConfig
from postback.delivery.sender import Sender
from postback.delivery.ssrf import NetworkPolicy, parse_networks
from postback.domain import ClaimedDelivery, TriggerType
from postback.signing import decode_secret, generate_secret
from tests.support.proxies import ForwardProxy, free_port
from tests.support.receivers import Receiver
from tests.support.server import ServerHandle

# Generous: a loaded machine answers slowly, and nothing here measures time.
HTTP = httpx.Client(timeout=30)


@dataclass
class Issuer:
    """The token server's and the receiver's shared state."""

    lifetime: int = 3600
    client_id: str = "shop/42"
    client_secret: str = "s3cret:with&odd=chars"
    issued: dict[str, float] = field(default_factory=dict)  # token -> expiry (time.time)
    revoked: set[str] = field(default_factory=set)
    requests: list[dict] = field(default_factory=list)  # what each token request carried
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    failing: tuple[int, str] | None = None

    def live(self, token: str) -> bool:
        return (
            token in self.issued and token not in self.revoked and self.issued[token] > time.time()
        )


def _token_endpoint(issuer: Issuer):  # type: ignore[no-untyped-def]
    async def respond(request: web.Request, _: int) -> web.StreamResponse:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        basic = request.headers.get("authorization", "")
        seen = {"form": form, "basic": None}
        if basic.startswith("Basic "):
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            seen["basic"] = (unquote(user), unquote(password))
        issuer.requests.append(seen)
        if issuer.failing:
            status, text = issuer.failing
            return web.Response(status=status, text=text, content_type="application/json")
        given = seen["basic"] or (form.get("client_id"), form.get("client_secret"))
        if form.get("grant_type") != "client_credentials" or given != (
            issuer.client_id,
            issuer.client_secret,
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "unknown client"}, status=401
            )
        token = f"tok-{next(issuer.numbers)}"
        issuer.issued[token] = time.time() + issuer.lifetime
        answer = {"access_token": token, "token_type": "Bearer", "expires_in": issuer.lifetime}
        return web.json_response(answer)

    return respond


def _protected(issuer: Issuer):  # type: ignore[no-untyped-def]
    async def respond(request: web.Request, _: int) -> web.StreamResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not issuer.live(token):
            return web.Response(status=401, text="bad token")
        return web.Response(text=f"hello {token}")

    return respond


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def auth_server(issuer: Issuer) -> Iterator[Receiver]:
    with Receiver() as r:
        r.route("/token", _token_endpoint(issuer))
        yield r


@pytest.fixture
def hook(issuer: Issuer) -> Iterator[Receiver]:
    with Receiver() as r:
        r.route("/hook", _protected(issuer))
        yield r


def _config(auth_server: Receiver, issuer: Issuer, **kw: object) -> OAuthConfig:
    values = {
        "token_url": auth_server.url + "/token",
        "client_id": issuer.client_id,
        "client_secret": issuer.client_secret,
        "scopes": ("webhooks:write", "orders"),
        "audience": "https://api.merchant.example",
    } | kw
    return OAuthConfig(**values)  # type: ignore[arg-type]


def _delivery(url: str, oauth: OAuthConfig, headers: dict | None = None) -> ClaimedDelivery:
    return ClaimedDelivery(
        "dlv_1", "l", "msg_1", "app_1", "ep_1", url, (decode_secret(generate_secret()),),
        headers or {}, b"{}", 0, TriggerType.SCHEDULED, None, oauth,
    )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_one_token_shared_renewed_when_it_expires(
    issuer: Issuer, auth_server: Receiver, hook: Receiver
) -> None:
    clock = Clock()
    oauth = _config(auth_server, issuer)
    url = hook.url + "/hook"
    headers = {"Authorization": "Basic overridden"}  # the token replaces it
    async with Sender(timeout=5, allow_private_networks=True, clock=clock) as sender:
        results = await asyncio.gather(
            *(sender.send(_delivery(url, oauth, headers)) for _ in range(20))
        )
        assert all(r.ok and r.response == "hello tok-1" for r in results)
        assert len(issuer.requests) == 1  # twenty deliveries, one token request
        clock.now += 3600 - 29  # within the last 30 s before it expires: renewed
        renewed = await sender.send(_delivery(url, oauth))
    assert renewed.response == "hello tok-2" and len(issuer.requests) == 2
    (first, _) = issuer.requests
    assert first["basic"] == (issuer.client_id, issuer.client_secret)  # urlencoded, decoded
    assert first["form"] == {
        "grant_type": "client_credentials",
        "scope": "webhooks:write orders",
        "audience": "https://api.merchant.example",
    }
    assert all(r.headers["authorization"].startswith("Bearer tok-") for r in hook.received())


async def test_client_secret_in_the_body(
    issuer: Issuer, auth_server: Receiver, hook: Receiver
) -> None:
    oauth = _config(auth_server, issuer, auth_method="clientSecretPost", scopes=(), audience=None)
    async with Sender(timeout=5, allow_private_networks=True) as sender:
        result = await sender.send(_delivery(hook.url + "/hook", oauth))
    assert result.ok
    (seen,) = issuer.requests
    assert seen["basic"] is None
    assert seen["form"] == {
        "grant_type": "client_credentials",
        "client_id": issuer.client_id,
        "client_secret": issuer.client_secret,
    }


async def test_a_401_refreshes_the_token_once_per_delivery(
    issuer: Issuer, auth_server: Receiver, hook: Receiver
) -> None:
    oauth = _config(auth_server, issuer)
    url = hook.url + "/hook"
    async with Sender(timeout=5, allow_private_networks=True) as sender:
        assert (await sender.send(_delivery(url, oauth))).response == "hello tok-1"
        issuer.revoked.add("tok-1")  # the receiver's side revokes it early
        refreshed = await sender.send(_delivery(url, oauth))
        assert refreshed.ok and refreshed.response == "hello tok-2"
        assert len(issuer.requests) == 2 and len(hook.received()) == 3
        # A receiver refusing every token: one refresh, then the 401 is the attempt's result.
        issuer.revoked.update(f"tok-{n}" for n in range(1, 10))
        refused = await sender.send(_delivery(url, oauth))
    assert refused.status_code == 401 and refused.response == "bad token"
    assert len(issuer.requests) == 3 and len(hook.received()) == 5


async def test_token_endpoint_failures_are_recorded_with_their_reason(
    issuer: Issuer, auth_server: Receiver, hook: Receiver
) -> None:
    url = hook.url + "/hook"
    wrong = _config(auth_server, issuer, client_secret="nope")
    down = _config(auth_server, issuer, token_url=f"http://127.0.0.1:{free_port()}/token")
    async with Sender(timeout=5, allow_private_networks=True) as sender:
        refused = await sender.send(_delivery(url, wrong))
        unreachable = await sender.send(_delivery(url, down))
        issuer.failing = (503, "<html>maintenance</html>")
        broken = await sender.send(_delivery(url, _config(auth_server, issuer, audience="b")))
        issuer.failing = (200, '{"token_type": "bearer"}')
        empty = await sender.send(_delivery(url, _config(auth_server, issuer, audience="c")))
    assert refused.status_code == 0 and refused.error == (
        "not sent: OAuth2 token request: the token endpoint answered 401: "
        "invalid_client (unknown client)"
    )
    assert "not sent: OAuth2 token request: connection failed: 127.0.0.1:" in (
        unreachable.error or ""
    )
    assert broken.error == (
        "not sent: OAuth2 token request: the token endpoint answered 503: <html>maintenance</html>"
    )
    assert (
        empty.error
        == "not sent: OAuth2 token request: the token endpoint's answer has no access_token"
    )
    assert hook.received() == []  # nothing went out without a token


async def test_the_token_request_takes_the_guard_and_the_proxy(
    issuer: Issuer, auth_server: Receiver, hook: Receiver, tmp_path: Path
) -> None:
    # Private networks allowed (so a token URL may be http, as in development), one denied.
    policy = NetworkPolicy(denied=parse_networks("127.0.0.2/32"), allow_private=True)
    oauth = _config(auth_server, issuer)
    with ForwardProxy(tmp_path, "http") as proxy:
        async with Sender(timeout=5, policy=policy, egress_proxy=proxy.url) as sender:
            result = await sender.send(_delivery(hook.url + "/hook", oauth))
        assert result.ok, result.error
        hosts = proxy.connections()
    assert hosts == [auth_server.url.split("//")[1], hook.url.split("//")[1]]
    inside = _config(auth_server, issuer, token_url="http://127.0.0.2:9/token")
    async with Sender(timeout=5, policy=policy) as sender:
        blocked = await sender.send(_delivery(hook.url + "/hook", inside))
        strict = Sender(
            timeout=5,
            policy=NetworkPolicy(allowed=parse_networks("127.0.0.1/32")),
            require_https=False,
        )
    assert "127.0.0.2, in POSTBACK_DENIED_NETWORKS (SSRF guard)" in (blocked.error or "")
    async with strict:
        plain = await strict.send(_delivery(hook.url + "/hook", oauth))
    assert plain.error == "not sent: OAuth2 token request: the token URL must use https"


def _auth(server: ServerHandle) -> dict[str, str]:
    return {"authorization": f"Bearer {server.token}"}


def test_the_api_sets_shows_and_seals_oauth(
    server: ServerHandle, issuer: Issuer, auth_server: Receiver, hook: Receiver
) -> None:
    app = server.svix().application.create(ApplicationIn(name="oauth")).id
    base = f"{server.url}/api/v1/app/{app}/endpoint"
    oauth = {
        "tokenUrl": auth_server.url + "/token",
        "clientId": issuer.client_id,
        "clientSecret": issuer.client_secret,
        "scopes": ["orders"],
        "authMethod": "clientSecretBasic",
    }
    created = HTTP.post(
        base, json={"url": hook.url + "/hook", "oauth": oauth}, headers=_auth(server)
    )
    assert created.status_code == 201, created.text
    ep = created.json()
    assert ep["oauth"] == {
        "enabled": True,
        "config": {
            "grantType": "clientCredentials",
            "authMethod": "clientSecretBasic",
            "clientId": issuer.client_id,
            "tokenUrl": auth_server.url + "/token",
            "scopes": ["orders"],
            "audience": None,
            "extraParams": None,
        },
    }
    shown = HTTP.get(f"{base}/{ep['id']}/oauth", headers=_auth(server))
    assert shown.json() == ep["oauth"]
    for answer in (created, shown, HTTP.get(f"{base}/{ep['id']}", headers=_auth(server))):
        assert issuer.client_secret not in answer.text
    server.svix().message.create(app, MessageIn(event_type="a.b", payload={}))
    (got,) = hook.wait_for(1, "/hook")
    assert got.headers["authorization"] == "Bearer tok-1"
    stored = server.call(lambda store: store.get_endpoint(app, ep["id"]))
    assert stored["oauth"].startswith("enc:v1:") and issuer.client_secret not in stored["oauth"]
    # Svix's routes: PUT replaces (204), DELETE removes.
    put = HTTP.put(
        f"{base}/{ep['id']}/oauth", json=oauth | {"clientId": "other"}, headers=_auth(server)
    )
    assert put.status_code == 204
    assert (
        HTTP.get(f"{base}/{ep['id']}/oauth", headers=_auth(server)).json()["config"]["clientId"]
        == "other"
    )
    # An update that does not name oauth keeps it (the svix SDK's endpoint.update).
    updated = HTTP.put(
        f"{base}/{ep['id']}", json={"url": hook.url + "/hook"}, headers=_auth(server)
    )
    assert updated.json()["oauth"]["enabled"] is True
    assert HTTP.delete(f"{base}/{ep['id']}/oauth", headers=_auth(server)).status_code == 204
    assert HTTP.get(f"{base}/{ep['id']}", headers=_auth(server)).json()["oauth"]["enabled"] is False


def test_bad_oauth_settings_are_422s_naming_the_field(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(allow_private_networks=False)
    app = server.svix().application.create(ApplicationIn(name="bad oauth")).id
    base = f"{server.url}/api/v1/app/{app}/endpoint"
    good = {"tokenUrl": "https://93.184.216.34/token", "clientId": "c", "clientSecret": "s"}
    cases = [
        (good | {"tokenUrl": "http://93.184.216.34/token"}, ["body", "oauth", "tokenUrl"], "https"),
        (
            good | {"tokenUrl": "https://127.0.0.1/token"},
            ["body", "oauth", "tokenUrl"],
            "non-public",
        ),
        (good | {"tokenUrl": "ftp://x/token"}, ["body", "oauth", "tokenUrl"], "http or https"),
        (good | {"grantType": "refreshToken"}, ["body", "oauth"], "refreshToken is not supported"),
        (good | {"authMethod": "clientSecretJwt"}, ["body", "oauth"], "clientSecretJwt"),
        (
            {k: v for k, v in good.items() if k != "clientSecret"},
            ["body", "oauth", "clientSecret"],
            "",
        ),
        (good | {"extraParams": {"client_secret": "x"}}, ["body", "oauth"], "extraParams"),
    ]
    for oauth, loc, words in cases:
        answer = HTTP.post(
            base, json={"url": "https://93.184.216.34/h", "oauth": oauth}, headers=_auth(server)
        )
        assert answer.status_code == 422, (oauth, answer.text)
        (detail,) = answer.json()["detail"]
        assert detail["loc"] == loc and words in detail["msg"], (oauth, detail)
    ep = HTTP.post(base, json={"url": "https://93.184.216.34/h"}, headers=_auth(server)).json()
    put = HTTP.put(
        f"{base}/{ep['id']}/oauth",
        json=good | {"tokenUrl": "http://93.184.216.34/t"},
        headers=_auth(server),
    )
    assert put.status_code == 422 and put.json()["detail"][0]["loc"] == ["body", "tokenUrl"]


@pytest.mark.parametrize(
    ("lang", "label"), [("en", "Token URL"), ("es", "URL de tokens"), ("pt-BR", "ID do cliente")]
)
def test_the_portal_form_sets_oauth(
    server: ServerHandle,
    issuer: Issuer,
    auth_server: Receiver,
    hook: Receiver,
    lang: str,
    label: str,
) -> None:
    from tests.web.test_web_http import csrf_of, portal_client

    app = server.svix().application.create(ApplicationIn(name="portal oauth")).id
    portal = portal_client(server, app)
    portal.cookies.set("pb_lang", lang)
    page = portal.get("/portal/endpoints/new")
    assert label in html.unescape(page.text)
    made = portal.post(
        "/portal/endpoints/new",
        data={
            "csrf": csrf_of(page.text), "url": hook.url + "/hook", "description": "",
            "scope": "all", "oauth_token_url": auth_server.url + "/token",
            "oauth_client_id": issuer.client_id, "oauth_client_secret": issuer.client_secret,
            "oauth_scopes": "orders refunds", "oauth_auth_method": "body",
        },
    )  # fmt: skip
    assert made.status_code == 303, made.text[:400]
    shown = html.unescape(portal.get(made.headers["location"]).text)
    assert auth_server.url + "/token" in shown and issuer.client_id in shown
    assert issuer.client_secret not in shown and "orders refunds" in shown
    server.svix().message.create(app, MessageIn(event_type="a.b", payload={}))
    (got,) = hook.wait_for(1, "/hook")
    assert got.headers["authorization"] == "Bearer tok-1"
    assert issuer.requests[0]["form"]["client_secret"] == issuer.client_secret


def test_the_cli_sets_oauth(server: ServerHandle, issuer: Issuer, auth_server: Receiver) -> None:
    from tests.support.cli import ok_json, pb

    app = server.svix().application.create(ApplicationIn(name="cli oauth")).id
    made = ok_json(
        server, "endpoint", "create", app, "https://hooks.example/h",
        "--oauth-token-url", auth_server.url + "/token", "--oauth-client-id", "cli",
        "--oauth-scope", "a", "--oauth-scope", "b", "--oauth-audience", "aud",
        "--oauth-auth-method", "body", POSTBACK_OAUTH_CLIENT_SECRET="from-env",
    )  # fmt: skip
    assert made["oauth"]["config"] | {"tokenUrl": None} == {
        "grantType": "clientCredentials", "authMethod": "clientSecretPost", "clientId": "cli",
        "tokenUrl": None, "scopes": ["a", "b"], "audience": "aud", "extraParams": None,
    }  # fmt: skip
    missing = pb(server, "endpoint", "create", app, "https://h.example/", "--oauth-client-id", "x")
    assert missing.returncode != 0 and "tokenUrl" in missing.stderr
