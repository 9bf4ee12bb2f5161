"""The embeddable portal over plain HTTP: who may frame it (POSTBACK_EMBED_ORIGINS), the
theme's values checked and kept for the session, cookies that reach a third-party frame,
and CORS for the API from the embedding origins with portal tokens only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from postback.config import Settings, SettingsError
from postback.web.embedding import Theme, read_theme
from tests.support.server import ServerHandle, server_settings
from tests.web import test_web_http
from tests.web.test_web_http import csrf_of

SHOP = "https://shop.example"
LOCAL = "http://localhost:3000"
web_server = test_web_http.web_server  # no embedding origins: as before


@pytest.fixture(scope="module")
def embed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    path: Path = tmp_path_factory.mktemp("embed") / "postback.db"
    # Spelled as an operator might: the server writes them as browsers do.
    origins = "HTTPS://Shop.Example:443, http://localhost:3000"
    handle = ServerHandle(server_settings(f"sqlite:///{path}", embed_origins=origins)).start()
    yield handle
    handle.stop()


def _app(server: ServerHandle, name: str) -> str:
    from svix.api import ApplicationIn

    return server.svix().application.create(ApplicationIn(name=name)).id


def _portal_token(server: ServerHandle, app_id: str) -> str:
    from svix.api import AppPortalAccessIn

    return server.svix().authentication.app_portal_access(app_id, AppPortalAccessIn()).token


def _cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie of the response, by name: the whole header line."""
    lines = response.headers.get_list("set-cookie")
    return {line.split("=", 1)[0]: line for line in lines}


def _value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1]


def _portal_session(server: ServerHandle, app_id: str, **query: str) -> dict[str, str]:
    """Log in to the portal as a browser would, carrying the cookies by hand (they are
    Secure on a loopback http server, which httpx's jar keeps to https). Every Set-Cookie
    line seen, by name."""
    entry = httpx.get(server.url + "/portal/", params=query, timeout=30)
    lines = _cookies(entry)
    login = httpx.post(
        server.url + "/portal/session",
        data={"token": _portal_token(server, app_id), "csrf": csrf_of(entry.text)},
        cookies={name: _value(line) for name, line in lines.items()},
        timeout=10,
    )
    assert login.status_code == 303 and login.headers["location"] == "/portal/endpoints"
    return lines | _cookies(login)


def _jar(lines: dict[str, str]) -> dict[str, str]:
    return {name: _value(line) for name, line in lines.items() if "Max-Age=0" not in line}


# ---- the setting ----------------------------------------------------------------------


def test_embed_origins_are_written_as_browsers_send_them() -> None:
    settings = Settings.from_env(
        {"POSTBACK_EMBED_ORIGINS": "HTTPS://App.Example.com:443,http://localhost:3000, ,"}
    )
    assert settings.embed_origin_list == ("https://app.example.com", "http://localhost:3000")
    assert Settings.from_env({}).embed_origin_list == ()


@pytest.mark.parametrize(
    "bad",
    [
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/portal",
        "ftp://app.example.com",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "https://*.example.com",
        "https://app.example.com?x=1",
        "https://app_example.com",
    ],
)
def test_a_bad_embed_origin_is_a_clear_error_at_start(bad: str) -> None:
    with pytest.raises(SettingsError, match=r"POSTBACK_EMBED_ORIGINS: expected .*scheme"):
        Settings.from_env({"POSTBACK_EMBED_ORIGINS": f"https://ok.example, {bad}"})


def test_serve_refuses_to_start_with_a_bad_embed_origin(tmp_path: Path) -> None:
    postback = str(Path(sys.executable).with_name("postback"))
    env = os.environ | {
        "POSTBACK_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "POSTBACK_PORT": "0",  # were it to start after all, on no port in use
        "POSTBACK_EMBED_ORIGINS": "https://shop.example/dashboard",
    }
    done = subprocess.run([postback, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    said = " ".join((done.stdout + done.stderr).split())
    assert "POSTBACK_EMBED_ORIGINS" in said and "'https://shop.example/dashboard'" in said


# ---- framing ---------------------------------------------------------------------------


def test_only_the_embedding_origins_may_frame_the_portal(
    embed_server: ServerHandle, web_server: ServerHandle
) -> None:
    portal = httpx.get(embed_server.url + "/portal/?error=invalid", timeout=30)
    policy = portal.headers["content-security-policy"]
    assert f"frame-ancestors {SHOP} {LOCAL};" in policy
    assert "x-frame-options" not in portal.headers  # it cannot name origins
    assert f'src="/static/portal-frame.js" data-origins="{SHOP} {LOCAL}"' in portal.text
    script = httpx.get(embed_server.url + "/static/portal-frame.js", timeout=30)
    assert "svix.iframe-resizer-height" in script.text
    # The dashboard is never framed, embedding or not.
    for server in (embed_server, web_server):
        page = httpx.get(server.url + "/dashboard/login", timeout=30)
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert "portal-frame.js" not in page.text
    # Without embedding origins the portal is not framed either, as before.
    plain = httpx.get(web_server.url + "/portal/?error=invalid", timeout=30)
    assert "frame-ancestors 'none'" in plain.headers["content-security-policy"]
    assert plain.headers["x-frame-options"] == "DENY"
    assert "portal-frame.js" not in plain.text


def test_portal_cookies_reach_a_third_party_frame_when_embedding(
    embed_server: ServerHandle, web_server: ServerHandle
) -> None:
    app_id = _app(embed_server, "Cookie shop")
    lines = _portal_session(embed_server, app_id)
    for name in ("pb_portal_login_csrf", "pb_portal"):
        line = lines[name]
        assert re.search(r"SameSite=none", line, re.I) and "Secure" in line, line
        assert line.endswith("; Partitioned") and "HttpOnly" in line, line
    # The dashboard's cookies stay first-party only.
    dashboard = httpx.get(embed_server.url + "/dashboard/login", timeout=30)
    strict = _cookies(dashboard)["pb_login_csrf"]
    assert re.search(r"SameSite=strict", strict, re.I) and "Partitioned" not in strict
    # Over plain http to a host that is not loopback a browser would drop a Secure cookie:
    # there the portal's cookies stay SameSite=Strict.
    remote = httpx.get(
        embed_server.url + "/portal/", headers={"host": "webhooks.internal"}, timeout=10
    )
    assert re.search(r"SameSite=strict", _cookies(remote)["pb_portal_login_csrf"], re.I)
    # Without embedding origins nothing changes.
    plain = httpx.get(web_server.url + "/portal/", timeout=30)
    plain_line = _cookies(plain)["pb_portal_login_csrf"]
    assert re.search(r"SameSite=strict", plain_line, re.I) and "Partitioned" not in plain_line


# ---- the theme -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"darkMode": "true"}, Theme(mode="dark")),
        ({"darkMode": "auto"}, Theme(mode="auto")),
        ({"darkMode": "false"}, Theme()),
        ({"darkMode": "yes please"}, Theme()),
        ({"primaryColor": "#C0392B"}, Theme(primary="#c0392b")),
        ({"primaryColor": "0af"}, Theme(primary="#00aaff")),
        ({"primaryColor": "red"}, Theme()),
        ({"primaryColor": "#fff;}body{display:none"}, Theme()),
        ({"fontFamily": "Open Sans, sans-serif"}, Theme(font="Open Sans, sans-serif")),
        ({"fontFamily": "Inter"}, Theme(font="Inter")),
        ({"fontFamily": "'Open Sans'"}, Theme()),
        ({"fontFamily": "Inter;color:red"}, Theme()),
        ({"fontFamily": "x}body{background:url(https://evil.example/)"}, Theme()),
        ({"fontFamily": "A" * 201}, Theme()),
        (
            {"icon": "https://cdn.example.com/logo.png"},
            Theme(icon="https://cdn.example.com/logo.png"),
        ),
        ({"icon": "http://cdn.example.com/logo.png"}, Theme()),
        ({"icon": "javascript:alert(1)"}, Theme()),
        ({"icon": 'https://cdn.example.com/a.png" onerror="alert(1)'}, Theme()),
        ({"icon": "https://user:pw@cdn.example.com/a.png"}, Theme()),
        ({"icon": "https://cdn.example.com;script-src */a.png"}, Theme()),
        ({"icon": "https://" + "a" * 2050 + ".example/x.png"}, Theme()),
    ],
)
def test_theme_values_are_checked_one_by_one(query: dict[str, str], expected: Theme) -> None:
    assert read_theme(query) == expected


HOSTILE = {
    "primaryColor": "#fff}</style><script>alert(1)</script>",
    "fontFamily": "x;}body{background:url(//evil.example/x)}",
    "icon": 'https://evil.example/x.png" onerror="alert(1)',
    "darkMode": '"><script>alert(1)</script>',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_bad_theme_value_never_reaches_the_page(embed_server: ServerHandle, name: str) -> None:
    value = HOSTILE[name]
    page = httpx.get(
        embed_server.url + "/portal/", params={"error": "invalid", name: value}, timeout=10
    )
    assert page.status_code == 200
    head = page.text.split("<body>")[0]
    assert "<style" not in head and "evil.example" not in head and "alert" not in head
    assert "data-theme" not in head and 'class="brand-icon"' not in page.text
    policy = page.headers["content-security-policy"]
    assert "nonce" not in policy and "evil.example" not in policy
    assert "Max-Age=0" in _cookies(page)["pb_theme"]  # nothing kept


def test_the_theme_lasts_for_the_session(embed_server: ServerHandle) -> None:
    app_id = _app(embed_server, "Loja temática")
    query = {
        "darkMode": "true",
        "primaryColor": "#336699",
        "fontFamily": "Georgia, serif",
        "icon": "https://cdn.example.com:8443/brand.png",
    }
    jar = _jar(_portal_session(embed_server, app_id, **query))
    assert "pb_theme" in jar
    for path in ("/portal/endpoints", "/portal/messages", "/portal/?error=expired"):
        page = httpx.get(embed_server.url + path, cookies=jar, timeout=30)
        assert page.status_code == 200, path
        assert '<html lang="en" data-theme="dark">' in page.text
        style = re.search(r'<style nonce="([^"]+)">([^<]*)</style>', page.text)
        assert style, path
        assert "--accent:#336699;--accent-fg:#fff" in style.group(2)
        assert "font-family:Georgia, serif," in style.group(2)
        policy = page.headers["content-security-policy"]
        assert f"style-src 'self' 'nonce-{style.group(1)}'" in policy
        assert "img-src 'self' data: https://cdn.example.com:8443;" in policy
        assert '<img class="brand-icon" src="https://cdn.example.com:8443/brand.png"' in page.text
        assert "pb_theme" not in _cookies(page)  # kept as it was
    # A new portal link starts with its own look: none here.
    fresh = httpx.get(embed_server.url + "/portal/", cookies=jar, timeout=30)
    assert "Max-Age=0" in _cookies(fresh)["pb_theme"] and "data-theme" not in fresh.text
    # A light primary colour gets dark text on its buttons.
    light = httpx.get(
        embed_server.url + "/portal/?error=invalid&primaryColor=%23ffee00", timeout=10
    )
    assert "--accent:#ffee00;--accent-fg:#1a202c" in light.text


# ---- CORS ------------------------------------------------------------------------------


def _preflight(server: ServerHandle, path: str, origin: str, method: str = "GET") -> httpx.Response:
    headers = {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": "authorization, content-type, idempotency-key, "
        "svix-req-id",
    }
    return httpx.options(server.url + path, headers=headers, timeout=30)


def test_a_preflight_from_an_embedding_origin_to_a_portal_route(
    embed_server: ServerHandle,
) -> None:
    app_id = _app(embed_server, "Preflight shop")
    for path in (
        f"/api/v1/app/{app_id}/endpoint",
        f"/api/v1/app/{app_id}/msg/",
        "/api/v1/event-type",
    ):
        answer = _preflight(embed_server, path, LOCAL, "POST")
        assert answer.status_code == 204, path
        assert answer.headers["access-control-allow-origin"] == LOCAL
        allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key", "svix-req-id"} <= allowed
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in answer.headers
        assert answer.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    ("origin", "path"),
    [
        ("https://elsewhere.example", "/api/v1/app/{app}/endpoint"),
        ("https://shop.example:8443", "/api/v1/app/{app}/endpoint"),  # another port
        ("http://shop.example", "/api/v1/app/{app}/endpoint"),  # another scheme
        (LOCAL, "/api/v1/app"),  # operator-only: the list of applications
        (LOCAL, "/api/v1/app/"),
        (LOCAL, "/api/v1/auth/app-portal-access/{app}"),
        (LOCAL, "/api/v1/operational-webhook/endpoint"),
        (LOCAL, "/api/v1/background-task"),
    ],
)
def test_a_preflight_is_refused_for_other_origins_and_operator_routes(
    embed_server: ServerHandle, origin: str, path: str
) -> None:
    answer = _preflight(embed_server, path.format(app="app_x"), origin, "POST")
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers
    assert answer.json()["code"]  # Svix's error shape


def test_requests_from_an_embedding_origin_with_a_portal_token(
    embed_server: ServerHandle,
) -> None:
    app_id = _app(embed_server, "CORS shop")
    token = _portal_token(embed_server, app_id)
    auth = {"authorization": f"Bearer {token}", "origin": SHOP}
    base = f"{embed_server.url}/api/v1/app/{app_id}"
    created = httpx.post(
        base + "/endpoint",
        json={"url": "https://hooks.example/cors"},
        headers=auth | {"idempotency-key": "cors-1", "svix-req-id": "7"},
        timeout=10,
    )
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == SHOP
    assert "access-control-allow-credentials" not in created.headers
    listed = httpx.get(base + "/endpoint", headers=auth, timeout=30)
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == SHOP
    assert [e["url"] for e in listed.json()["data"]] == ["https://hooks.example/cors"]
    # Errors are readable by the page too.
    missing = httpx.get(base + "/endpoint/ep_nope", headers=auth, timeout=30)
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == SHOP
    # Another origin's page gets the answer without CORS headers: its browser hides it.
    other = httpx.get(
        base + "/endpoint", headers=auth | {"origin": "https://x.example"}, timeout=10
    )
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    # A server-side client (no Origin) is answered as always.
    plain = httpx.get(base + "/endpoint", headers={"authorization": f"Bearer {token}"}, timeout=30)
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


def test_an_operator_token_from_a_browser_origin_is_refused(embed_server: ServerHandle) -> None:
    app_id = _app(embed_server, "Operator shop")
    operator = {"authorization": f"Bearer {embed_server.token}"}
    url = f"{embed_server.url}/api/v1/app/{app_id}/endpoint"
    refused = httpx.get(url, headers=operator | {"origin": LOCAL}, timeout=30)
    assert refused.status_code == 403
    assert refused.headers["access-control-allow-origin"] == LOCAL  # the page may read why
    assert "app-portal token" in refused.json()["detail"]
    created = httpx.post(
        url,
        json={"url": "https://hooks.example/op"},
        headers=operator | {"origin": LOCAL},
        timeout=10,
    )
    assert created.status_code == 403
    assert httpx.get(url, headers=operator, timeout=30).json()["data"] == []  # nothing written


def test_no_cors_without_embedding_origins(web_server: ServerHandle) -> None:
    app_id = _app(web_server, "No CORS shop")
    answer = _preflight(web_server, f"/api/v1/app/{app_id}/endpoint", LOCAL)
    assert "access-control-allow-origin" not in answer.headers
    token = _portal_token(web_server, app_id)
    got = httpx.get(
        f"{web_server.url}/api/v1/app/{app_id}/endpoint",
        headers={"authorization": f"Bearer {token}", "origin": LOCAL},
        timeout=10,
    )
    assert got.status_code == 200 and "access-control-allow-origin" not in got.headers
