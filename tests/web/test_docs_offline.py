"""/docs without a CDN: Swagger UI's files come from postback itself, and the page renders
in Chromium with every request to another host refused."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Request, Route, expect

from tests.support.server import ServerHandle
from tests.web import test_browser, test_web_http

web_server = test_web_http.web_server
browser = test_browser.browser
KINDS = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def test_docs_reference_only_postbacks_own_files(web_server: ServerHandle) -> None:
    page = httpx.get(web_server.url + "/docs", timeout=30)
    assert page.status_code == 200
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(refs) == 3  # the script, the stylesheet, the icon
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        asset = httpx.get(web_server.url + ref, timeout=30)
        assert asset.status_code == 200, ref
        kind = next(k for suffix, k in KINDS.items() if ref.endswith(suffix))
        assert kind in asset.headers["content-type"], (ref, asset.headers["content-type"])
    script = next(ref for ref in refs if ref.endswith(".js"))
    assert "SwaggerUIBundle" in httpx.get(web_server.url + script, timeout=30).text
    assert "cdn." not in page.text and "https://" not in page.text
    # FastAPI's ReDoc page fetched its script from a CDN too: it is not served.
    assert httpx.get(web_server.url + "/redoc", timeout=30).status_code == 404


@pytest.fixture
def offline(
    browser: Browser, web_server: ServerHandle
) -> Iterator[tuple[BrowserContext, list[str]]]:
    """A browser that reaches nothing but the server: every other request is aborted and
    written down."""
    ctx = browser.new_context()
    ctx.set_default_timeout(test_browser.WAIT_MS)
    refused: list[str] = []

    def guard(route: Route, request: Request) -> None:
        if request.url.startswith(web_server.url + "/"):
            route.continue_()
        else:
            refused.append(request.url)
            route.abort()

    ctx.route("**/*", guard)
    yield ctx, refused
    ctx.close()


def test_docs_render_offline(
    web_server: ServerHandle, offline: tuple[BrowserContext, list[str]]
) -> None:
    ctx, refused = offline
    page = ctx.new_page()
    page.goto(web_server.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "postback", timeout=test_browser.WAIT_MS
    )
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert refused == []
