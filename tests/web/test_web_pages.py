"""Portal and dashboard pages over plain HTTP against a running server: endpoint forms,
recovery, event types, the dashboard's lists and search, the language switcher."""

from __future__ import annotations

import re

import httpx

from postback.store.store import Store
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle
from tests.web import test_web_http
from tests.web.test_web_http import _app, _endpoint, csrf_of, dashboard_client, portal_client

# The same module-wide SQLite server and receiver as the session and security tests.
web_server = test_web_http.web_server
receiver = test_web_http.receiver


def test_the_dashboard_search_finds_a_message_by_event_id_across_apps(
    web_server: ServerHandle,
) -> None:
    from svix.api import MessageIn

    app_id = _app(web_server, "searched")
    msg = web_server.svix().message.create(
        app_id, MessageIn(event_type="x.y", payload={}, event_id="evt-unique-42")
    )
    dash = dashboard_client(web_server)
    page = dash.get("/dashboard/search", params={"q": "evt-unique-42"})
    assert msg.id in page.text and "searched" in page.text
    assert "No message has this id" in dash.get("/dashboard/search?q=evt-none").text


def test_open_portal_from_the_dashboard_issues_a_working_link(web_server: ServerHandle) -> None:
    app_id = _app(web_server, "opened by operator")
    dash = dashboard_client(web_server)
    csrf = csrf_of(dash.get("/dashboard/").text)
    answer = dash.post(f"/dashboard/apps/{app_id}/portal", data={"csrf": csrf})
    assert answer.status_code == 303
    base, _, fragment = answer.headers["location"].partition("/portal/#token=")
    assert base == web_server.url and fragment.startswith("pbapp_")

    async def who(store: Store) -> tuple[str | None, float]:
        principal = await store.authenticate(fragment)
        assert principal is not None and principal.expires_at is not None
        return principal.app_id, (principal.expires_at - store.clock()).total_seconds()

    owner, lifetime = web_server.call(who)
    assert owner == app_id
    assert 3500 < lifetime <= 3600  # an operator's look is short-lived


def test_the_language_follows_accept_language_and_the_switcher(web_server: ServerHandle) -> None:
    client = httpx.Client(base_url=web_server.url, timeout=30)
    assert (
        "Acceso de operador"
        in client.get(
            "/dashboard/login", headers={"accept-language": "es-AR,es;q=0.9,en;q=0.5"}
        ).text
    )
    assert (
        "Acesso do operador"
        in client.get("/dashboard/login", headers={"accept-language": "pt-BR"}).text
    )
    assert (
        "Operator login"
        in client.get(
            "/dashboard/login", headers={"accept-language": "fr, en;q=0.5, es;q=0.1"}
        ).text
    )
    switched = client.get("/ui/lang/pt-BR", params={"next": "/dashboard/login"})
    assert switched.status_code == 303 and switched.headers["location"] == "/dashboard/login"
    page = client.get("/dashboard/login", headers={"accept-language": "es"})
    assert "Acesso do operador" in page.text  # the switcher wins over the header
    # The switcher only sends the browser back to this site.
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        answer = client.get("/ui/lang/es", params={"next": target})
        assert answer.headers["location"] == "/"


def test_endpoint_forms_store_what_was_typed(web_server: ServerHandle, receiver: Receiver) -> None:
    app_id = _app(web_server, "forms")
    portal = portal_client(web_server, app_id)
    csrf = csrf_of(portal.get("/portal/endpoints/new").text)
    form = {
        "csrf": csrf,
        "url": receiver.url + "/hook",
        "description": "CRM",
        "scope": "one",
        "product": "213344",
        "rate_limit": "7",
        "headers": "X-Shop: ana\nAuthorization: Bearer s3cret",
    }
    created = portal.post("/portal/endpoints/new", data=form)
    assert created.status_code == 303
    ep_id = created.headers["location"].split("/")[-1].split("?")[0]
    svix = web_server.svix()
    ep = svix.endpoint.get(app_id, ep_id)
    assert (ep.description, ep.channels, ep.throttle_rate) == ("CRM", None, 7)
    auth = {"authorization": f"Bearer {web_server.token}"}
    raw = httpx.get(f"{web_server.url}/api/v1/app/{app_id}/endpoint/{ep_id}", headers=auth)
    assert raw.json()["product"] == "213344"  # one product: not a channel the sender must send
    edit = portal.get(f"/portal/endpoints/{ep_id}/edit").text
    assert "X-Shop: ana" in edit and "s3cret" not in edit  # credentials are never shown
    saved = portal.post(
        f"/portal/endpoints/{ep_id}/edit",
        data=form | {"scope": "all", "rate_limit": "", "headers": "X-Shop: bia"},
    )
    assert saved.status_code == 303
    ep = svix.endpoint.get(app_id, ep_id)
    assert ep.channels is None and ep.throttle_rate is None
    assert (
        httpx.get(f"{web_server.url}/api/v1/app/{app_id}/endpoint/{ep_id}", headers=auth).json()[
            "product"
        ]
        is None
    )
    headers = svix.endpoint.get_headers(app_id, ep_id)
    assert headers.headers == {"X-Shop": "bia"} and headers.sensitive == ["Authorization"]
    # Rotating the secret gives a new one, shown once revealed.
    before = svix.endpoint.get_secret(app_id, ep_id).key
    rotated = portal.post(f"/portal/endpoints/{ep_id}/rotate", data={"csrf": csrf})
    assert rotated.headers["location"].endswith("?reveal=1&notice=rotated")
    after = svix.endpoint.get_secret(app_id, ep_id).key
    assert after != before and after in portal.get(rotated.headers["location"]).text
    assert after not in portal.get(f"/portal/endpoints/{ep_id}").text
    # The message page lists the headers sent, with credentials masked.
    from svix.api import MessageIn

    msg = svix.message.create(app_id, MessageIn(event_type="a.b", payload={}))
    eventually(lambda: 'article class="attempt' in portal.get(f"/portal/messages/{msg.id}").text)
    page = portal.get(f"/portal/messages/{msg.id}").text
    assert "X-Shop: bia" in page and "Authorization: ••••" in page and "s3cret" not in page


def test_recover_failed_since_sends_them_again(
    web_server: ServerHandle, receiver: Receiver
) -> None:
    from svix.api import MessageIn

    receiver.route("/flaky", fail(503))
    app_id = _app(web_server, "recover")
    ep_id = _endpoint(web_server, app_id, receiver.url + "/flaky")
    svix = web_server.svix()
    sent = [
        svix.message.create(app_id, MessageIn(event_type="a.b", payload={"i": i})) for i in (0, 1)
    ]
    portal = portal_client(web_server, app_id)
    # The test schedule gives up after three attempts each.
    failed = 'class="badge bad">1 fail'
    eventually(lambda: portal.get("/portal/messages?status=fail").text.count(failed) == 2)
    assert len(receiver.received("/flaky")) == 6
    receiver.route("/flaky", ok())
    csrf = csrf_of(portal.get(f"/portal/endpoints/{ep_id}").text)
    answer = portal.post(
        f"/portal/endpoints/{ep_id}/recover", data={"csrf": csrf, "since": "2020-01-01T00:00"}
    )
    assert answer.status_code == 303
    receiver.wait_for(8, "/flaky")
    eventually(lambda: "No messages match" in portal.get("/portal/messages?status=fail").text)

    # The attempts of the recovery say so, in each language; the API keeps Svix's two
    # trigger types, where a recovery is a scheduled attempt.
    def labels(lang: str, path: str) -> list[str]:
        portal.cookies.set("pb_lang", lang)
        html = portal.get(path).text
        return re.findall(r"(Recovery|Recuperación|Recuperação|Scheduled|Programado)", html)

    page = f"/portal/messages/{sent[0].id}"
    eventually(lambda: "Recovery" in labels("en", page), what="the recovery attempt")
    assert sorted(labels("en", page)) == ["Recovery", "Scheduled", "Scheduled", "Scheduled"]
    assert labels("es", page).count("Recuperación") == 1
    assert labels("pt-BR", f"/portal/endpoints/{ep_id}").count("Recuperação") == 2
    attempts = svix.message_attempt.list_by_msg(app_id, sent[0].id).data
    assert sorted(int(a.trigger_type) for a in attempts) == [0, 0, 0, 0]


def test_operator_edits_archives_and_restores_an_event_type(web_server: ServerHandle) -> None:
    dash = dashboard_client(web_server)
    csrf = csrf_of(dash.get("/dashboard/event-types/new").text)
    created = dash.post(
        "/dashboard/event-types/new",
        data={"csrf": csrf, "name": "invoice.paid", "description": "Paid", "examples": '{"n": 1}'},
    )
    assert created.status_code == 303
    schema = '{"type": "object", "properties": {"total": {"type": "number", "description": "T"}}}'
    saved = dash.post(
        "/dashboard/event-types/invoice.paid",
        data={"csrf": csrf, "description": "An invoice was paid", "schema": schema},
    )
    assert saved.status_code == 303
    stored = web_server.svix().event_type.get("invoice.paid")
    assert stored.description == "An invoice was paid"
    assert stored.schemas["1"]["properties"]["total"]["type"] == "number"
    form = dash.get("/dashboard/event-types/invoice.paid").text
    assert "&#34;total&#34;" in form or '"total"' in form
    portal = portal_client(web_server, _app(web_server, "catalog reader"))
    assert 'id="et-invoice.paid"' in portal.get("/portal/catalog").text
    dash.post("/dashboard/event-types/invoice.paid/archive", data={"csrf": csrf})
    assert 'id="et-invoice.paid"' not in portal.get("/portal/catalog").text
    assert "Archived" in dash.get("/dashboard/event-types").text
    dash.post("/dashboard/event-types/invoice.paid/restore", data={"csrf": csrf})
    assert 'id="et-invoice.paid"' in portal.get("/portal/catalog").text


def test_disabled_endpoints_and_queue_show_on_the_dashboard(
    web_server: ServerHandle, receiver: Receiver
) -> None:
    app_id = _app(web_server, "dash health")
    ep_id = _endpoint(web_server, app_id, receiver.url + "/parked")
    portal = portal_client(web_server, app_id)
    csrf = csrf_of(portal.get(f"/portal/endpoints/{ep_id}").text)
    portal.post(f"/portal/endpoints/{ep_id}/disable", data={"csrf": csrf})
    home = dashboard_client(web_server).get("/dashboard/").text
    section = home.split('id="dis-h"')[1]
    assert receiver.url + "/parked" in section and "dash health" in section
    assert 'id="queue-due"' in home and "<svg" in home
    disabled_tile = re.search(r'id="queue-disabled">(\d+)<', home)
    assert disabled_tile and int(disabled_tile.group(1)) >= 1
