"""Every page of the portal and the dashboard on a phone (390 x 844), in English, Spanish
and Brazilian Portuguese, with real data: the commerce catalog, an application with a
working, a disabled and an open-circuit endpoint (long URLs, payload rules) and an ordered
one whose key is blocked, messages with long eventIds, scheduled, manual and recovery
attempts, an operational-webhook endpoint and the events it was sent (every table of the
dashboard has rows). On each page nothing pushes the page sideways, and every control
(link, button, field, summary) can be reached by scrolling down alone: after scrolling to
it, it lies inside the screen's width and inside every box that clips it (a table's
scrolling wrapper included)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from postback import reasons
from postback.store import schema
from postback.store.blocked import CHORE
from postback.store.store import Store
from postback.web import describe
from postback.web.i18n import LANGUAGES, translator
from postback.web.session import LANG_COOKIE
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, hang, ok
from tests.support.server import ServerHandle
from tests.web import test_browser, test_web_http
from tests.web.test_web_circuit import OPEN, set_columns

web_server = test_web_http.web_server
browser = test_browser.browser
PHONE = {"width": 390, "height": 844}
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalogs" / "commerce.json"
# No hyphen or slash late in it to break at: only the pages' own wrapping keeps it on screen.
LONG = "abcdefghij0123456789" * 6
EVENT_ID = "HP1601547928100-APPROVED-" + "0123456789" * 4


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        r.route("/ok", ok(200, '{"received": true}'))
        r.route("/down", fail(503, "Service Unavailable"))
        r.route("/slow", hang(5))  # each attempt times out (2 s): an ordered key stays blocked
        yield r


def _api(server: ServerHandle) -> httpx.Client:
    headers = {"authorization": f"Bearer {server.token}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def _attempts(api: httpx.Client, app: str, msg: str) -> list[dict[str, Any]]:
    answer = api.get(f"/api/v1/app/{app}/attempt/msg/{msg}/")
    answer.raise_for_status()
    return answer.json()["data"]


@pytest.fixture(scope="module")
def shop(web_server: ServerHandle, receiver: Receiver) -> dict[str, str]:
    """The data every page is shown with; returns the ids the pages are addressed by."""
    api = _api(web_server)
    for et in json.loads(CATALOG.read_text())["eventTypes"]:
        api.post("/api/v1/event-type/", json=et).raise_for_status()
    # The operator's endpoint first: the endpoints made below are announced to it.
    ops = {"url": f"{receiver.url}/ok?ops={LONG}", "filterTypes": ["endpoint.created"]}
    api.post("/api/v1/operational-webhook/endpoint/", json=ops).raise_for_status()
    app = api.post("/api/v1/app/", json={"name": "Loja da Ana Cursos Online", "uid": "ana"})
    app_id = app.json()["id"]
    good = api.post(
        f"/api/v1/app/{app_id}/endpoint/",
        json={
            "url": f"{receiver.url}/ok?key={LONG}",
            "description": "Production " + LONG,
            "filterTypes": ["purchase.approved", "purchase.refunded", "purchase.chargeback"],
            "channels": ["213344"],
            "filter": {"data.purchase.price.value": {"$gte": 100}},
            "projection": {"exclude": ["/data/buyer/document", "/data/buyer/address"]},
            "headers": {"X-Shop": LONG},
        },
    ).json()["id"]
    down = api.post(
        f"/api/v1/app/{app_id}/endpoint/",
        json={"url": f"{receiver.url}/down?crm={LONG}", "description": "Old CRM"},
    ).json()["id"]
    tripped = api.post(
        f"/api/v1/app/{app_id}/endpoint/",
        json={"url": f"http://127.0.0.1:9/{LONG}{LONG}", "filterTypes": ["purchase.expired"]},
    ).json()["id"]
    set_columns(web_server, tripped, **OPEN)
    _blocked_key(web_server, api, app_id, receiver)
    example = json.loads(CATALOG.read_text())["eventTypes"][0]["schemas"]["1"]["examples"][0]
    msg_id = ""
    for i in range(3):
        body = {
            "eventType": "purchase.approved",
            "eventId": f"{EVENT_ID}{i}",
            "payload": example,
            "channels": ["213344"],
        }
        msg_id = api.post(f"/api/v1/app/{app_id}/msg/", json=body).json()["id"]
    # The failing endpoint gives up after the test schedule's three attempts.
    eventually(lambda: len([a for a in _attempts(api, app_id, msg_id) if a["status"] != 0]) >= 3)
    api.post(f"/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{good}/resend/").raise_for_status()
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    recover = api.post(f"/api/v1/app/{app_id}/endpoint/{down}/recover/", json={"since": since})
    recover.raise_for_status()
    eventually(lambda: len(_attempts(api, app_id, msg_id)) >= 8, what="recovery attempts")
    # Stored as auto-disable stores it: a code with its values, worded for each reader.
    reason = reasons.stored(reasons.failing_since(datetime.now(UTC), 12))
    set_columns(
        web_server, down, disabled=True, disabled_reason=reason, disabled_at=datetime.now(UTC)
    )
    token = api.post(f"/api/v1/auth/app-portal-access/{app_id}/", json={}).json()["token"]
    return {
        "app": app_id,
        "good": good,
        "down": down,
        "tripped": tripped,
        "msg": msg_id,
        "token": token,
        "reason": reason or "",
    }


def _blocked_key(server: ServerHandle, api: httpx.Client, app_id: str, receiver: Receiver) -> None:
    """An ordered endpoint whose key's head failed (timed out) and is tried again, and the
    blocked-keys pass run while it is: the dashboard lists it."""
    kind = "purchase.delayed"  # of this endpoint alone: the shop's messages are not for it
    ordered = {"url": f"{receiver.url}/slow?{LONG}", "ordered": True, "filterTypes": [kind]}
    ep = api.post(f"/api/v1/app/{app_id}/endpoint/", json=ordered).json()["id"]
    body = {"eventType": kind, "payload": {}, "orderingKey": "sub-" + LONG}
    api.post(f"/api/v1/app/{app_id}/msg/", json=body).raise_for_status()

    def tried() -> bool:
        heads = api.get(f"/api/v1/app/{app_id}/endpoint/{ep}/ordering").json()["data"]
        return bool(heads) and heads[0]["attempts"] >= 1

    async def pass_now(store: Store) -> Any:
        # Due now, whenever the worker's own pass last ran, and not again for the test's
        # length (the worker's, with the 1 h alert, would find nothing blocked that long).
        async with store.engine.begin() as conn:
            chore = schema.housekeeping.c.name == CHORE
            await conn.execute(schema.housekeeping.update().where(chore).values(due_at=None))
        await store.announce_blocked_keys(0, every=3600)
        return await store.blocked_too_long()

    eventually(tried, what="the ordered key's first failed attempt")
    shown = server.call(pass_now)
    assert shown and shown["blocked"], "the blocked-keys pass ran after the head was given up"


def _pages(ids: dict[str, str]) -> list[str]:
    endpoint_pages = [f"/portal/endpoints/{ids[k]}" for k in ("good", "down", "tripped")]
    return [
        "/portal/endpoints",
        "/portal/endpoints/new",
        *endpoint_pages,
        f"/portal/endpoints/{ids['good']}?reveal=1&event_type=purchase.refunded",
        f"/portal/endpoints/{ids['good']}/edit",
        f"/portal/endpoints/{ids['down']}/delete",
        "/portal/messages",
        "/portal/messages?event_type=purchase.approved&status=fail",
        f"/portal/messages/{ids['msg']}",
        "/portal/messages/msg_none",  # the error page
        "/portal/catalog",
        "/portal/catalog?q=purchase",  # every entry open
        "/dashboard/",
        "/dashboard/event-types",
        "/dashboard/event-types/new",
        "/dashboard/event-types/purchase.approved",
        f"/dashboard/search?q={EVENT_ID}0",
        "/dashboard/search?q=nothing-has-this-id",
    ]


# What is wrong with the page in front of the browser, one line per problem, naming the
# element by tag, id, class and text. The page is scrolled vertically only: a control that
# needs sideways scrolling (of the page or of a box) to be seen counts as cut off.
CHECK = """(width) => {
  const name = (e) => {
    const text = (e.innerText || e.value || e.getAttribute('aria-label') || '').trim();
    return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
      + (typeof e.className === 'string' && e.className.trim()
        ? '.' + e.className.trim().split(/\\s+/).join('.') : '')
      + (text ? ' "' + text.slice(0, 40).replace(/\\s+/g, ' ') + '"' : '');
  };
  const box = (r) => `[${Math.round(r.left)}..${Math.round(r.right)}]`;
  const problems = [];
  window.scrollTo(0, 0);
  const wide = document.documentElement.scrollWidth;
  if (wide > width) {
    // Elements past the edge, and those whose own text spills out of them.
    const over = [...document.body.querySelectorAll('*')].filter((e) => e.getClientRects().length
      && (e.getBoundingClientRect().right > width + 0.5 || (e.scrollWidth > e.clientWidth + 1
        && getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0)));
    const deepest = over.filter((e) => !over.some((o) => o !== e && e.contains(o)))
      .sort((a, b) => b.getBoundingClientRect().right - a.getBoundingClientRect().right);
    problems.push(`the page is ${wide} px wide, pushed by: ` +
      deepest.slice(0, 4).map((e) => name(e) + ' ' + box(e.getBoundingClientRect())).join(', '));
  }
  const controls = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary');
  for (const el of controls) {
    if (!el.getClientRects().length || !el.checkVisibility({visibilityProperty: true})) continue;
    el.focus({preventScroll: true});  // a skip link shows itself only when focused
    const before = el.getBoundingClientRect();
    window.scrollTo(0, window.scrollY + before.top - innerHeight / 2);
    const r = el.getBoundingClientRect();
    let cut = r.left < -0.5 || r.right > width + 0.5 ? `the screen [0..${width}]` : '';
    for (let p = el.parentElement; p && !cut; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
      const c = p.getBoundingClientRect();
      if (r.left < c.left - 0.5 || r.right > c.right + 0.5) cut = name(p) + ' ' + box(c);
    }
    if (cut) problems.push(`${name(el)} ${box(r)} is cut off by ${cut}`);
    el.blur();
  }
  return problems;
}"""


@pytest.mark.parametrize("lang", [code for code, _ in LANGUAGES])
def test_every_page_fits_a_phone(
    web_server: ServerHandle, shop: dict[str, str], browser: Browser, lang: str
) -> None:
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    ctx.set_default_timeout(test_browser.WAIT_MS)
    ctx.add_cookies([{"name": LANG_COOKIE, "value": lang, "url": web_server.url}])
    try:
        page = ctx.new_page()
        problems = _check(page, web_server.url + "/dashboard/login", lang)
        problems += _check(page, web_server.url + "/portal/?error=logged-out", lang)
        page.goto(web_server.url + "/dashboard/login")
        page.locator("#token").fill(web_server.token)
        page.locator("form.stack button[type=submit]").click()
        page.wait_for_url("**/dashboard/")
        page.goto(f"{web_server.url}/portal/#token={shop['token']}")
        page.wait_for_url("**/portal/endpoints")
        for path in _pages(shop):
            problems += _check(page, web_server.url + path, lang)
        # Operators and customers read why the endpoint stopped in their own language, its
        # date as that language writes it (the phone's pages, in Chromium).
        said = describe.disabled_text(shop["reason"], translator(lang), lang)
        assert said and (lang == "en" or "Disabled automatically" not in said), said
        for path in ("/dashboard/", f"/portal/endpoints/{shop['down']}"):
            page.goto(web_server.url + path)
            assert page.get_by_text(said).first.is_visible(), (path, said)
        # The dashboard checked above had a row in each of its tables.
        page.goto(web_server.url + "/dashboard/")
        for table in ("#circuits", "#blocked-keys", "#ops-endpoints", "#ops-events"):
            assert page.locator(table).count() == 1, f"the dashboard has no {table}"
    finally:
        ctx.close()
    assert not problems, f"{lang} at 390 px:\n" + "\n".join(problems)


def _check(page: Page, url: str, lang: str) -> list[str]:
    answer = page.goto(url)
    assert answer is not None and answer.status < 500, f"{url} answered {answer and answer.status}"
    assert page.evaluate("document.documentElement.lang") == lang, url
    return [f"{url}: {p}" for p in page.evaluate(CHECK, PHONE["width"])]
