"""An endpoint whose circuit is open, in a real browser: the operator's dashboard lists it
and leads to its portal page, which says so in English, Spanish and Portuguese; on a
phone's width neither page scrolls sideways, however long the URL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.server import ServerHandle
from tests.web import test_browser, test_web_http
from tests.web.test_web_circuit import OPEN, PROBE, SINCE, set_columns, shown

web_server = test_web_http.web_server
browser = test_browser.browser
context = test_browser.context
PHONE = {"width": 390, "height": 844}
# No hyphen or space to break at: only the pages' own wrapping keeps it on the screen.
LONG_URL = "http://127.0.0.1:9/webhooks/" + "abcdefghij0123456789" * 8 + "?token=" + "f" * 40


@pytest.fixture(scope="module")
def broken(web_server: ServerHandle) -> tuple[str, str]:
    """An application with one endpoint whose circuit is open (no delivery is due to it, so
    the running worker leaves the breaker as written)."""
    from svix.api import ApplicationIn, EndpointIn

    svix = web_server.svix()
    app = svix.application.create(ApplicationIn(name="Loja do circuito"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=LONG_URL))
    set_columns(web_server, ep.id, **OPEN)
    return app.id, ep.id


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(locale="en-US", viewport=PHONE, is_mobile=True)
    ctx.set_default_timeout(test_browser.WAIT_MS)
    yield ctx
    ctx.close()


def _no_sideways_scroll(page: Page) -> None:
    """Neither the page nor a table's scrolling box is wider than the screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"
    boxes = page.evaluate(
        "[...document.querySelectorAll('.scroll')].map(e => [e.scrollWidth, e.clientWidth])"
    )
    for inner, outer in boxes:
        assert inner <= outer, f"{page.url}: a table is {inner} px wide in {outer} px"


def test_the_dashboard_leads_to_the_open_circuit_in_three_languages(
    web_server: ServerHandle, broken: tuple[str, str], context: BrowserContext
) -> None:
    _, ep_id = broken
    page = context.new_page()
    test_browser.operator_login(page, web_server)
    expect(page.locator("#queue-circuits")).to_have_text("1")
    row = page.locator("#circuits tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Loja do circuito")
    expect(row).to_contain_text(LONG_URL)
    expect(row).to_contain_text("Circuit open")
    expect(row).to_contain_text(shown(PROBE))

    row.get_by_role("button", name=f"Open portal: {LONG_URL}").click()
    expect(page).to_have_url(re.compile(f"/portal/endpoints/{ep_id}$"))
    circuit = page.locator("#circuit")
    expect(circuit.locator(".badge")).to_have_text("Circuit open")
    expect(page.locator("#circuit-since")).to_have_text(shown(SINCE))
    expect(page.locator("#circuit-probe")).to_have_text(shown(PROBE))
    expect(page.locator("#circuit-failures")).to_have_text("7")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Next probe")

    page.get_by_role("link", name="Español").click()
    expect(circuit.locator(".badge")).to_have_text("Circuito abierto")
    expect(facts).to_contain_text("Próximo sondeo")
    expect(facts).to_contain_text("Fallos seguidos")
    expect(page.locator("#circuit-probe")).to_have_text(shown(PROBE))

    page.get_by_role("link", name="Português").click()
    expect(circuit.locator(".badge")).to_have_text("Circuito aberto")
    expect(facts).to_contain_text("Próxima sondagem")
    expect(facts).to_contain_text("Falhas seguidas")

    page.get_by_role("link", name="Endpoints").click()
    expect(page.locator("tbody .badge.circuit")).to_have_text("Circuito aberto")


def test_on_a_phone_the_pages_wrap_long_urls(
    web_server: ServerHandle, broken: tuple[str, str], phone: BrowserContext
) -> None:
    _, ep_id = broken
    page = phone.new_page()
    test_browser.operator_login(page, web_server)
    expect(page.locator("#circuits")).to_contain_text(LONG_URL)
    _no_sideways_scroll(page)
    page.locator("#circuits").get_by_role("button", name=f"Open portal: {LONG_URL}").click()
    expect(page).to_have_url(re.compile(f"/portal/endpoints/{ep_id}$"))
    expect(page.locator("#circuit .badge")).to_have_text("Circuit open")
    _no_sideways_scroll(page)
    page.get_by_role("link", name="Endpoints").click()
    expect(page.locator("tbody .badge.circuit")).to_have_text("Circuit open")
    _no_sideways_scroll(page)
