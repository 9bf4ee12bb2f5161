"""The portal and the dashboard in a real browser: headless Chromium driven by Playwright
against a running postback server, delivering to a real loopback receiver."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle
from tests.web import test_web_http

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT_MS = 15_000

SCHEMA = """{
  "type": "object",
  "required": ["purchase_id", "buyer"],
  "properties": {
    "purchase_id": {"type": "string", "description": "Purchase code", "maxLength": 32},
    "buyer": {
      "type": "object",
      "description": "Who bought",
      "properties": {
        "email": {"type": "string", "format": "email", "description": "Buyer e-mail",
                  "maxLength": 120}
      }
    },
    "price": {"type": "number", "description": "Amount paid"}
  }
}"""
EXAMPLES = '[{"purchase_id": "HP1234", "buyer": {"email": "ana@example.com"}, "price": 97.5}]'

# One SQLite server for the module, the same fixture as the plain-HTTP tests use.
web_server = test_web_http.web_server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:  # fail loudly: a skipped browser test proves nothing
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs it with apt-get")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 900})
    ctx.set_default_timeout(WAIT_MS)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        r.route("/hook", ok(200, "thanks"))
        yield r


def operator_login(page: Page, server: ServerHandle) -> None:
    page.goto(server.url + "/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    page.get_by_label("Operator token").fill(server.token)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_operator_and_customer_journey(
    web_server: ServerHandle, receiver: Receiver, context: BrowserContext
) -> None:
    from svix.api import ApplicationIn

    app = web_server.svix().application.create(ApplicationIn(name="Loja da Ana"))
    page = context.new_page()

    # The operator logs in and creates an event type with a schema and an example.
    operator_login(page, web_server)
    page.get_by_role("link", name="Event types").click()
    page.get_by_role("link", name="New event type").click()
    page.get_by_label("Name").fill("purchase.approved")
    page.get_by_label("Description", exact=True).fill("A purchase was approved")
    page.get_by_label("JSON schema of the payload").fill(SCHEMA)
    page.get_by_label("Examples (a JSON array of payloads)").fill(EXAMPLES)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Created.")
    expect(page.get_by_role("link", name="purchase.approved")).to_be_visible()

    # ... and opens the customer's portal: the token travels in the URL fragment.
    page.get_by_role("link", name="Overview").click()
    page.get_by_role("button", name="Open portal: Loja da Ana").click()
    expect(page).to_have_url(re.compile(r"/portal/endpoints$"))
    expect(page.get_by_text("Loja da Ana")).to_be_visible()

    # The catalog shows the new event type's fields, nested ones with dotted names.
    page.get_by_role("link", name="Event catalog").click()
    fields = page.locator("#et-purchase\\.approved table.fields")
    expect(fields).to_contain_text("buyer.email")
    row = fields.locator("tr", has_text="buyer.email")
    expect(row).to_contain_text("email")
    expect(row).to_contain_text("120")
    expect(row).to_contain_text("Buyer e-mail")
    expect(page.locator("#et-purchase\\.approved pre")).to_contain_text("ana@example.com")

    # The customer adds an endpoint through the form.
    page.get_by_role("link", name="Endpoints").click()
    page.get_by_role("link", name="Add endpoint").click()
    hook = receiver.url + "/hook"
    page.get_by_label("URL", exact=True).fill(hook)
    page.get_by_label("Description").fill("Production")
    page.get_by_role("checkbox", name="purchase.approved").check()
    page.get_by_label("Custom headers (one per line, Name: value)").fill("X-Shop: ana")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Created.")
    expect(page.locator("p.url")).to_have_text(hook)
    endpoint_url = page.url.split("?")[0]

    # The secret stays hidden until revealed.
    expect(page.locator("#secret")).to_have_count(0)
    page.get_by_role("link", name="Reveal secret").click()
    expect(page.locator("#secret")).to_have_text(re.compile(r"^whsec_"))

    # Send a test event: the example payload is shown, sent, and its attempt appears.
    expect(page.get_by_label("Example payload")).to_contain_text("HP1234")
    page.get_by_role("button", name=re.compile("Send example")).click()
    expect(page.get_by_role("status")).to_have_text("Test event sent.")
    first = page.locator("article.attempt").first
    expect(first).to_contain_text("200")
    expect(first).to_contain_text("thanks")
    expect(first.locator("summary", has_text="Request headers")).to_be_visible()
    expect(page.locator("pre.payload")).to_contain_text('"purchase_id": "HP1234"')
    received = receiver.wait_for(1, "/hook")
    assert received[0].headers["x-shop"] == "ana"

    # Resend it: a manual attempt joins the first.
    page.get_by_role("button", name=re.compile("Resend")).click()
    expect(page.get_by_role("status")).to_have_text("Resend queued.")
    expect(page.locator("article.attempt")).to_have_count(2)
    expect(page.locator("article.attempt", has_text="Manual")).to_contain_text("200")
    assert len(receiver.wait_for(2, "/hook")) == 2

    # The message log lists it and filters by event type and status.
    page.get_by_role("link", name="Message log").click()
    page.get_by_label("Event type").select_option("purchase.approved")
    page.get_by_label("Status").select_option("success")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    page.get_by_label("Status").select_option("fail")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No messages match.")).to_be_visible()

    # The endpoint page shows the attempts and the stats chart; then it is disabled.
    page.goto(endpoint_url)
    expect(page.locator("table.attempts tbody tr")).to_have_count(2)
    expect(page.locator("svg.chart")).to_be_visible()
    page.get_by_role("button", name="Disable", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Endpoint disabled.")
    expect(page.locator("dl.facts .badge")).to_have_text("Disabled")
    assert web_server.svix().endpoint.get(app.id, endpoint_url.rsplit("/", 1)[1]).disabled

    # Spanish, then Brazilian Portuguese, from the switcher on every page.
    page.get_by_role("link", name="Español").click()
    expect(page.get_by_role("heading", name="Secreto de firma")).to_be_visible()
    expect(page.locator("dl.facts .badge")).to_have_text("Desactivado")
    expect(page.get_by_role("button", name="Activar", exact=True)).to_be_visible()
    page.get_by_role("link", name="Historial de mensajes").click()
    expect(page.get_by_role("button", name="Filtrar")).to_be_visible()
    page.get_by_role("link", name="Português").click()
    expect(page.get_by_role("heading", name="Histórico de mensagens")).to_be_visible()
    page.get_by_role("link", name="Endpoints").click()
    expect(page.get_by_role("link", name="Adicionar endpoint")).to_be_visible()
    expect(page.locator("tbody .badge")).to_have_text("Desativado")
    page.get_by_role("link", name="Catálogo de eventos").click()
    expect(page.locator("table.fields caption").first).to_have_text("Campos do payload")


def test_accept_language_picks_the_first_language(
    web_server: ServerHandle, browser: Browser
) -> None:
    ctx = browser.new_context(locale="es-ES")
    try:
        page = ctx.new_page()
        page.goto(web_server.url + "/dashboard/login")
        expect(page.get_by_role("heading", name="Acceso de operador")).to_be_visible()
        expect(page.get_by_label("Token de operador")).to_be_visible()
    finally:
        ctx.close()


def test_deleting_an_endpoint_asks_first(
    web_server: ServerHandle, receiver: Receiver, context: BrowserContext
) -> None:
    from svix.api import ApplicationIn, EndpointIn

    svix = web_server.svix()
    app = svix.application.create(ApplicationIn(name="Deleting"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=receiver.url + "/gone"))
    page = context.new_page()
    operator_login(page, web_server)
    page.get_by_role("button", name="Open portal: Deleting").click()
    page.get_by_role("link", name=receiver.url + "/gone").click()
    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete endpoint")).to_be_visible()
    page.keyboard.press("Tab")  # the controls are reachable from the keyboard
    page.get_by_role("button", name="Yes, delete it").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Endpoint deleted.")
    assert ep.id not in page.content()
    assert svix.endpoint.list(app.id).data == []


def test_operator_finds_a_message_and_opens_it_in_the_portal(
    web_server: ServerHandle, receiver: Receiver, context: BrowserContext
) -> None:
    from svix.api import ApplicationIn, MessageIn

    svix = web_server.svix()
    app = svix.application.create(ApplicationIn(name="Searched shop"))
    msg = svix.message.create(
        app.id, MessageIn(event_type="order.shipped", payload={"tracking": "BR123"}, event_id="o-9")
    )
    page = context.new_page()
    operator_login(page, web_server)
    page.get_by_label("Find a message by id or eventId").fill("o-9")
    page.keyboard.press("Enter")
    expect(page.locator("tr.found")).to_have_count(1)
    page.get_by_role("button", name="Open in portal").click()
    expect(page).to_have_url(re.compile(f"/portal/messages/{msg.id}$"))
    expect(page.locator("pre.payload")).to_contain_text("BR123")
    expect(page.get_by_text("Searched shop")).to_be_visible()
