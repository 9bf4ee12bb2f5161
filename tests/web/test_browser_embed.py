"""svix-react itself (from npm) embedding postback in Chromium: a platform's page on another
site (http://localhost:PORT; postback is on http://127.0.0.1, a different site, so the
framed portal is a third-party frame) shows the portal in ``<AppPortal fullSize>`` with a
theme, and lists the application's endpoints, messages and event types with svix-react's
hooks, which call postback's API from the browser with the app-portal token (CORS)."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, Page, Route, expect

from tests.support import embed_build
from tests.support.node_sdks import NO_NODE, node_missing
from tests.support.polling import eventually
from tests.support.server import ServerHandle, server_settings
from tests.web import test_browser, test_web_http

browser = test_browser.browser
context = test_browser.context
web_server = test_web_http.web_server  # a server without embedding origins: themes still apply
WAIT_MS = test_browser.WAIT_MS
ICON = "https://icons.example/brand.svg"
ICON_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24">'
    b'<rect width="24" height="24" fill="#0a0"/></svg>'
)
THEME = {"primaryColor": "#c0392b", "darkMode": True, "fontFamily": "Georgia, serif"}
PRIMARY_RGB = "rgb(192, 57, 43)"
DARK_BG_RGB = "rgb(26, 32, 44)"
SHOT = os.environ.get("POSTBACK_TEST_EMBED_SCREENSHOT")  # a PNG of the page, to look at


class PlatformSite:
    """The embedding site: a loopback static server for the built page and its config."""

    def __init__(self, page_dir: Path) -> None:
        self.config: dict[str, Any] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/config.json":
                    body, kind = json.dumps(site.config).encode(), "application/json"
                elif self.path in ("/", "/bundle.js"):
                    name = "index.html" if self.path == "/" else "bundle.js"
                    body = (page_dir / name).read_bytes()
                    kind = "text/html" if name == "index.html" else "text/javascript"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # "localhost", not 127.0.0.1: another site than postback's, as a real platform is.
        self.origin = f"http://localhost:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def site() -> Iterator[PlatformSite]:
    if node_missing():
        pytest.skip(f"{NO_NODE} (svix-react's page is built with them)")
    try:
        page_dir = embed_build.build()
    except embed_build.Unavailable as exc:  # node and npm are here: a skip would hide it
        pytest.fail(f"the svix-react page could not be built: {exc}")
    platform = PlatformSite(page_dir)
    yield platform
    platform.close()


@pytest.fixture(scope="module")
def embed_server(
    site: PlatformSite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerHandle]:
    path = tmp_path_factory.mktemp("embed") / "postback.db"
    settings = server_settings(f"sqlite:///{path}", embed_origins=site.origin)
    handle = ServerHandle(settings).start()
    yield handle
    handle.stop()


def _icon(route: Route) -> None:
    """The icon's https host, answered by the browser's own router."""
    route.fulfill(status=200, content_type="image/svg+xml", body=ICON_SVG)


def _merchant(server: ServerHandle) -> tuple[str, list[str]]:
    """An application with two endpoints, an event type and two messages."""
    from svix.api import ApplicationIn, EndpointIn, EventTypeIn, MessageIn

    svix = server.svix()
    svix.event_type.create(EventTypeIn(name="purchase.approved", description="Approved"))
    app = svix.application.create(ApplicationIn(name="Loja embutida"))
    urls = ["https://hooks.example/all-purchases", "https://hooks.example/affiliates"]
    for url in urls:
        svix.endpoint.create(app.id, EndpointIn(url=url, disabled=True))
    for n in (1, 2):
        message = MessageIn(event_type="purchase.approved", payload={"n": n}, event_id=f"ev-{n}")
        svix.message.create(app.id, message)
    return app.id, urls


def _portal_frame(page: Page) -> Frame:
    def found() -> Frame | None:
        return next((f for f in page.frames if "/portal/" in f.url), None)

    return eventually(found, what="the portal's frame")


def _frame_height(page: Page) -> str:
    return page.locator("iframe").evaluate("el => el.style.height")


def _content_height(frame: Frame) -> int:
    return frame.evaluate("Math.ceil(document.documentElement.getBoundingClientRect().height)")


def _follows(page: Page, frame: Frame) -> int:
    """The iframe's height once svix-react has set it from the portal's message: the
    portal page's own height."""

    def matches() -> int | None:
        height = _content_height(frame)
        return height if _frame_height(page) == f"{height}px" else None

    return eventually(matches, what="the iframe's height following the portal's")


def test_svix_react_embeds_the_themed_portal_and_its_hooks_read_postback(
    site: PlatformSite, embed_server: ServerHandle, context: BrowserContext
) -> None:
    from svix.api import AppPortalAccessIn

    app_id, urls = _merchant(embed_server)
    access = embed_server.svix().authentication.app_portal_access(app_id, AppPortalAccessIn())
    site.config = {
        "portalUrl": access.url,
        "token": access.token,
        "appId": app_id,
        "serverUrl": embed_server.url,
        "theme": THEME | {"icon": ICON},
    }
    context.route(re.compile(r"^https://icons\.example/"), _icon)
    page = context.new_page()
    page.goto(site.origin + "/")

    # The hooks (useEndpoints, useMessages, useEventTypes) read postback's API from the
    # platform's origin with the portal token.
    endpoints = page.get_by_test_id("endpoints")
    for url in urls:
        expect(endpoints).to_contain_text(url, timeout=WAIT_MS)
    expect(page.get_by_test_id("messages")).to_contain_text("purchase.approved ev-1")
    expect(page.get_by_test_id("messages")).to_contain_text("purchase.approved ev-2")
    expect(page.get_by_test_id("event-types")).to_contain_text("purchase.approved")

    # <AppPortal> opened the link in its iframe: the portal logged in (its session cookie
    # reached a third-party frame) and shows the application's endpoints, themed.
    frame = _portal_frame(page)
    portal = page.frame_locator("iframe")
    expect(portal.get_by_role("heading", name="Endpoints")).to_be_visible(timeout=WAIT_MS)
    expect(portal.get_by_text(urls[0])).to_be_visible()
    assert re.search(r"/portal/endpoints$", frame.url)
    add = portal.get_by_role("link", name="Add endpoint")
    expect(add).to_have_css("background-color", PRIMARY_RGB)
    expect(portal.locator("html")).to_have_attribute("data-theme", "dark")
    expect(portal.locator("body")).to_have_css("background-color", DARK_BG_RGB)
    assert frame.evaluate("getComputedStyle(document.body).fontFamily").startswith("Georgia")
    icon = portal.locator("img.brand-icon")
    expect(icon).to_have_attribute("src", ICON)
    eventually(lambda: icon.evaluate("img => img.naturalWidth") == 24, what="the icon loaded")

    # svix-react sized the iframe from the portal's height message; a longer page inside
    # the portal makes the iframe follow it.
    before = _follows(page, frame)
    add.click()
    expect(portal.get_by_label("URL", exact=True)).to_be_visible()
    after = _follows(page, frame)
    if SHOT:
        page.screenshot(path=SHOT, full_page=True)
    assert after != before
    # The theme stayed on the next page, though the portal's links carry no query.
    expect(portal.get_by_role("button", name="Save")).to_have_css("background-color", PRIMARY_RGB)
    expect(portal.locator("html")).to_have_attribute("data-theme", "dark")
    # The language switcher works in the frame too (its cookie is a third-party one).
    portal.get_by_role("link", name="Português").click()
    expect(portal.locator("html")).to_have_attribute("lang", "pt-BR")
    expect(portal.get_by_role("button", name="Salvar")).to_be_visible()


@pytest.mark.parametrize(
    ("scheme", "background"), [("dark", DARK_BG_RGB), ("light", "rgb(255, 255, 255)")]
)
def test_dark_mode_auto_follows_the_readers_system(
    web_server: ServerHandle, browser: Browser, scheme: str, background: str
) -> None:
    ctx = browser.new_context(color_scheme=scheme)  # type: ignore[arg-type]
    try:
        page = ctx.new_page()
        # The entry page with an error shown stays put (no session to go on to).
        page.goto(web_server.url + "/portal/?darkMode=auto&error=invalid")
        expect(page.locator("html")).to_have_attribute("data-theme", "auto")
        expect(page.locator("body")).to_have_css("background-color", background)
    finally:
        ctx.close()
