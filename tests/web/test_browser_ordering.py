"""An ordered endpoint's blocked key in a real browser (issue 23): the portal's endpoint
page lists it in Spanish and Portuguese — key, head message, since when, attempts, the last
answer — and its "Retry now" sends the head again at once and its "Skip" (after a
confirmation) cancels it, recorded with who and when, so the key's next message goes out:
both checked through the API afterwards. The page and the confirmation fit a phone in every
language (tests/web/test_phone.py's check)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from postback.web.i18n import LANGUAGES
from postback.web.session import LANG_COOKIE
from tests.support.ordering import call
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail
from tests.support.server import ServerHandle, server_settings
from tests.web import test_browser, test_phone

browser = test_browser.browser
context = test_browser.context
KEY = "sub_" + "0123456789" * 3


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        r.route("/stuck", fail(503, "Service Unavailable: billing is down"))
        yield r


@pytest.fixture(scope="module")
def ordered_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """SQLite, with retries a minute apart: a failed head stays blocked for the test."""
    path: Path = tmp_path_factory.mktemp("ordering") / "postback.db"
    handle = ServerHandle(server_settings(f"sqlite:///{path}", retry_schedule=(60, 60))).start()
    yield handle
    handle.stop()


def _api(server: ServerHandle, method: str, path: str, body: Any = None) -> Any:
    answer = call(server.url, server.token, method, path, body)
    assert answer.status_code < 300, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def blocked(ordered_server: ServerHandle, receiver: Receiver) -> dict[str, str]:
    """An ordered endpoint whose key KEY has a head that failed once and a second message
    waiting behind it; a portal token for its application."""
    server = ordered_server
    app = _api(server, "POST", "/app", {"name": "Assinaturas"})["id"]
    url = f"{receiver.url}/stuck"
    ep = _api(server, "POST", f"/app/{app}/endpoint", {"url": url, "ordered": True})["id"]
    msgs = [
        _api(
            server,
            "POST",
            f"/app/{app}/msg",
            {"eventType": "subscription.updated", "payload": {"n": n}, "orderingKey": KEY},
        )["id"]
        for n in (1, 2)
    ]
    receiver.wait_for(1, "/stuck")
    eventually(lambda: _head(server, app, ep, attempts=1), 15, what="the head's failed attempt")
    token = _api(server, "POST", f"/auth/app-portal-access/{app}", {})["token"]
    return {"app": app, "ep": ep, "first": msgs[0], "second": msgs[1], "token": token}


def _head(server: ServerHandle, app: str, ep: str, attempts: int) -> dict[str, Any] | None:
    heads = _api(server, "GET", f"/app/{app}/endpoint/{ep}/ordering")["data"]
    return heads[0] if heads and heads[0]["attempts"] == attempts else None


def test_the_portal_shows_the_blocked_key_and_retry_and_skip_do_what_they_say(
    ordered_server: ServerHandle,
    blocked: dict[str, str],
    receiver: Receiver,
    context: BrowserContext,
) -> None:
    server, ids = ordered_server, blocked
    page = context.new_page()
    page.goto(f"{server.url}/portal/#token={ids['token']}")
    expect(page).to_have_url(re.compile(r"/portal/endpoints$"))
    page.get_by_role("link", name="Español").click()
    page.goto(f"{server.url}/portal/endpoints/{ids['ep']}")
    expect(page.get_by_role("heading", name="Claves de orden bloqueadas")).to_be_visible()
    row = page.locator("#blocked-keys tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".ordering-key")).to_have_text(KEY)
    expect(row.get_by_role("link", name=ids["first"])).to_have_attribute(
        "href", f"/portal/messages/{ids['first']}"
    )
    expect(row.locator(".head-attempts")).to_have_text("1")
    expect(row).to_contain_text("503")
    expect(row).to_contain_text("billing is down")
    expect(row.get_by_role("link", name="503")).to_have_attribute(
        "href", f"/portal/messages/{ids['first']}#attempts-h"
    )

    row.get_by_role("button", name="Reintentar ahora").click()
    expect(page.locator("p.notice")).to_have_text("El mensaje en cabeza se envía ahora.")
    receiver.wait_for(2, "/stuck")  # sent again now, not in a minute
    eventually(lambda: _head(server, ids["app"], ids["ep"], attempts=2), 15, what="a retry")
    sent = [orjson.loads(r.body)["n"] for r in receiver.received("/stuck")]
    assert sent == [1, 1]  # the second message still waits behind the head

    page.get_by_role("link", name="Português").click()
    page.reload()
    row = page.locator("#blocked-keys tbody tr")
    expect(row.locator(".head-attempts")).to_have_text("2")
    row.get_by_role("link", name="Pular").click()
    expect(page.get_by_role("heading", name="Pular a mensagem")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text(KEY)
    page.get_by_role("button", name="Sim, pular").click()
    expect(page).to_have_url(re.compile(f"/portal/endpoints/{ids['ep']}"))
    expect(page.locator("p.notice")).to_have_text("Mensagem pulada: a próxima da sua chave sai.")

    got = receiver.wait_for(3, "/stuck")  # the key's next message is its head now
    assert orjson.loads(got[2].body)["n"] == 2
    dests = _api(server, "GET", f"/app/{ids['app']}/msg/{ids['first']}/endpoint")["data"]
    assert dests[0]["statusText"] == "canceled"
    assert re.fullmatch(r"skipped by app portal token \S+ \(portal\) at \S+", dests[0]["note"])
    head = eventually(lambda: _head(server, ids["app"], ids["ep"], attempts=1), 15)
    assert head["msgId"] == ids["second"]


@pytest.mark.parametrize("lang", [code for code, _ in LANGUAGES])
def test_the_blocked_keys_fit_a_phone(
    ordered_server: ServerHandle, blocked: dict[str, str], browser: Browser, lang: str
) -> None:
    server, ids = ordered_server, blocked
    ctx = browser.new_context(viewport=test_phone.PHONE, is_mobile=True, has_touch=True)
    ctx.set_default_timeout(test_browser.WAIT_MS)
    ctx.add_cookies([{"name": LANG_COOKIE, "value": lang, "url": server.url}])
    try:
        page = ctx.new_page()
        page.goto(f"{server.url}/portal/#token={ids['token']}")
        page.wait_for_url("**/portal/endpoints")
        problems: list[str] = []
        for path in (
            f"/portal/endpoints/{ids['ep']}",
            f"/portal/endpoints/{ids['ep']}/ordering/skip?key={KEY}",
        ):
            problems += test_phone._check(page, server.url + path, lang)
        expect(page.locator("dl.facts")).to_contain_text(KEY)
    finally:
        ctx.close()
    assert not problems, f"{lang} at 390 px:\n" + "\n".join(problems)
