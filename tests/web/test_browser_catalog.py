"""The portal's event catalog in Chromium: groups and event types fold, the search box
filters as you type, and without JavaScript the same search is the server's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.server import ServerHandle
from tests.web import test_browser, test_web_http

web_server = test_web_http.web_server
browser = test_browser.browser
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalogs" / "commerce.json"
REFUND = ["purchase.completed", "purchase.refund_requested", "purchase.refunded"]


@pytest.fixture(scope="module")
def portal_link(web_server: ServerHandle) -> str:
    """The commerce catalog (one group), an invoice group and an ungrouped type; a portal."""
    headers = {"authorization": f"Bearer {web_server.token}"}
    with httpx.Client(base_url=web_server.url, headers=headers, timeout=30) as api:
        extra = [
            {"name": "invoice.paid", "description": "An invoice was paid.", "groupName": "bills"},
            {"name": "ping", "description": "Sent to check the endpoint answers."},
        ]
        for et in json.loads(CATALOG.read_text())["eventTypes"] + extra:
            api.post("/api/v1/event-type/", json=et).raise_for_status()
        app_id = api.post("/api/v1/app/", json={"name": "Catalog reader"}).json()["id"]
        token = api.post(f"/api/v1/auth/app-portal-access/{app_id}/", json={}).json()["token"]
    return f"{web_server.url}/portal/#token={token}"


def _open_catalog(ctx: BrowserContext, link: str) -> Page:
    page = ctx.new_page()
    page.goto(link)
    page.wait_for_url("**/portal/endpoints")
    page.get_by_role("link", name="Event catalog").click()
    return page


def _shown(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "details.event-type:not([hidden])", "els => els.map(e => e.id.slice(3))"
    )


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 900})
    ctx.set_default_timeout(test_browser.WAIT_MS)
    yield ctx
    ctx.close()


def test_the_catalog_folds_and_filters_as_you_type(
    web_server: ServerHandle, portal_link: str, context: BrowserContext
) -> None:
    page = _open_catalog(context, portal_link)
    entries = page.locator("details.event-type")
    expect(entries).to_have_count(11)
    expect(page.locator("#catalog-shown")).to_have_text("11")
    # Folded: each entry shows its name and description, not its fields.
    expect(page.locator("details.event-type[open]")).to_have_count(0)
    expect(page.locator("#et-purchase\\.approved table.fields")).to_be_hidden()
    expect(page.locator("#et-purchase\\.approved summary")).to_contain_text("was approved")
    folded = page.evaluate("document.documentElement.scrollHeight")
    groups = page.locator("details.group > summary h2")
    expect(groups).to_have_text(["bills", "purchase", "Other"])

    page.get_by_label("Search event types").fill("refund")
    expect(page.locator("#catalog-shown")).to_have_text("3")
    assert _shown(page) == REFUND  # names and descriptions are searched
    expect(page.locator("details.group:not([hidden]) > summary h2")).to_have_text(["purchase"])
    page.get_by_label("Search event types").fill("INVOICE paid")  # every word, any case
    assert _shown(page) == ["invoice.paid"]
    page.get_by_label("Search event types").fill("no-such-event")
    expect(page.get_by_text("No event type matches.")).to_be_visible()
    expect(page.locator("#catalog-shown")).to_have_text("0")
    page.get_by_label("Search event types").fill("")
    expect(page.locator("#catalog-shown")).to_have_text("11")
    expect(page.get_by_text("No event type matches.")).to_be_hidden()

    # An entry opens to its fields and example; all of them open are many times the page.
    page.locator("#et-purchase\\.approved summary").click()
    expect(page.locator("#et-purchase\\.approved table.fields")).to_be_visible()
    page.evaluate("document.querySelectorAll('details.event-type').forEach(d => d.open = true)")
    assert page.evaluate("document.documentElement.scrollHeight") > 5 * folded

    # A link to one entry opens it.
    page = context.new_page()
    page.goto(web_server.url + "/portal/catalog#et-purchase.refunded")
    expect(page.locator("#et-purchase\\.refunded table.fields")).to_be_visible()
    expect(page.locator("details.event-type[open]")).to_have_count(1)


def test_without_javascript_the_server_searches(
    browser: Browser, portal_link: str, web_server: ServerHandle
) -> None:
    # The portal link needs its script to open a session; the session then works without.
    ctx = browser.new_context(locale="en-US")
    ctx.set_default_timeout(test_browser.WAIT_MS)
    try:
        page = _open_catalog(ctx, portal_link)
        cookies = ctx.cookies()
    finally:
        ctx.close()
    plain = browser.new_context(locale="en-US", java_script_enabled=False)
    plain.set_default_timeout(test_browser.WAIT_MS)
    try:
        plain.add_cookies(cookies)
        page = plain.new_page()
        page.goto(web_server.url + "/portal/catalog")
        expect(page.locator("details.event-type:not([hidden])")).to_have_count(11)
        page.get_by_label("Search event types").fill("refund")
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(web_server.url + "/portal/catalog?q=refund")
        assert _shown(page) == REFUND
        expect(page.locator("#catalog-shown")).to_have_text("3")
        # What was found is open.
        expect(page.locator("#et-purchase\\.refunded table.fields")).to_be_visible()
    finally:
        plain.close()
