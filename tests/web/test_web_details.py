"""The smaller things of the web UI over plain HTTP: the favicon, the dashboard's hour and
day counts from one snapshot, finding a message by its eventId in the portal, the test
event's preview as the endpoint receives it, event-type descriptions in the reader's
language."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html import unescape

import httpx

from tests.support.polling import eventually
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle
from tests.web import test_web_http
from tests.web.test_web_http import _app, _endpoint, csrf_of, dashboard_client, portal_client

web_server = test_web_http.web_server
receiver = test_web_http.receiver


def test_the_favicon_is_served_as_svg_and_linked_from_every_page(
    web_server: ServerHandle,
) -> None:
    icon = httpx.get(web_server.url + "/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].split(";")[0] == "image/svg+xml"
    assert ET.fromstring(icon.content).tag == "{http://www.w3.org/2000/svg}svg"
    for page in ("/dashboard/login", "/portal/"):
        html = httpx.get(web_server.url + page).text
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    # Browsers ask for /favicon.ico where no page names the icon (the API, /docs).
    legacy = httpx.get(web_server.url + "/favicon.ico")
    assert legacy.status_code == 301 and legacy.headers["location"] == "/static/favicon.svg"


def _counts(html: str) -> tuple[int, int]:
    found = [re.search(rf'id="{name}-total">(\d+)<', html) for name in ("hour", "day")]
    assert found[0] and found[1], "the dashboard shows no attempt counts"
    return int(found[0].group(1)), int(found[1].group(1))


def test_the_hour_never_counts_more_attempts_than_the_day(
    web_server: ServerHandle, receiver: Receiver
) -> None:
    from svix.api import MessageIn

    dashboard = dashboard_client(web_server)
    hour, day = _counts(dashboard.get("/dashboard/").text)
    assert hour <= day
    app_id = _app(web_server, "counted")
    _endpoint(web_server, app_id, receiver.url + "/hook")
    before = len(receiver.received("/hook"))
    for i in range(3):
        web_server.svix().message.create(app_id, MessageIn(event_type="a.b", payload={"i": i}))
    receiver.wait_for(before + 3, "/hook")

    # The hour's count moves within seconds; the day's moves with it, never behind.
    def moved() -> tuple[int, int] | None:
        now = _counts(dashboard.get("/dashboard/").text)
        return now if now[0] >= hour + 3 else None

    later_hour, later_day = eventually(moved, what="the hour's count to include the attempts")
    assert later_hour <= later_day
    assert later_day >= day + 3


def test_the_message_log_finds_a_message_by_event_id(web_server: ServerHandle) -> None:
    from svix.api import MessageIn

    svix = web_server.svix()
    app_id, other = _app(web_server, "searched log"), _app(web_server, "other log")
    sent = {
        ref: svix.message.create(app_id, MessageIn(event_type="a.b", payload={}, event_id=ref)).id
        for ref in ("HP-1001", "HP-10011", "HP-1002")
    }
    svix.message.create(other, MessageIn(event_type="a.b", payload={}, event_id="HP-2001"))
    portal = portal_client(web_server, app_id)
    page = portal.get("/portal/messages").text
    assert 'id="f-ref" name="ref"' in page  # the field is on the page
    assert all(msg in page for msg in sent.values())

    def listed(ref: str) -> list[str]:
        html = portal.get("/portal/messages", params={"ref": ref}).text
        return re.findall(r'href="/portal/messages/(msg_[0-9a-z]+)"', html)

    assert listed("HP-1001") == [sent["HP-1001"]]  # exact: not HP-10011
    assert listed(" HP-1002 ") == [sent["HP-1002"]]
    assert listed(sent["HP-10011"]) == [sent["HP-10011"]]  # a message id works too
    assert listed("HP-2001") == []  # another application's eventId
    assert listed("HP-100") == []


def _preview(html: str) -> object:
    found = re.search(r'<pre class="payload" aria-label="Example payload">(.*?)</pre>', html, re.S)
    assert found, "the endpoint page shows no example payload"
    return json.loads(unescape(found.group(1)))


def test_the_test_event_preview_is_what_the_endpoint_receives(
    web_server: ServerHandle, receiver: Receiver
) -> None:
    from svix.api import EventTypeIn

    example = {"order": "A-1", "buyer": {"email": "ana@example.com", "document": "123"}}
    svix = web_server.svix()
    svix.event_type.create(
        EventTypeIn(name="order.previewed", description="d", schemas={"1": {"examples": [example]}})
    )
    app_id = _app(web_server, "previews")
    rules = {
        "/without-document": {"exclude": ["/buyer/document"]},
        "/order-only": {"include": ["/order"]},
        "/whole": None,
    }
    wanted = {
        "/without-document": {"order": "A-1", "buyer": {"email": "ana@example.com"}},
        "/order-only": {"order": "A-1"},
        "/whole": example,
    }
    portal = portal_client(web_server, app_id)
    for path, projection in rules.items():
        receiver.route(path, ok())
        body = {"url": receiver.url + path, "filterTypes": ["order.previewed"]}
        created = httpx.post(
            f"{web_server.url}/api/v1/app/{app_id}/endpoint/",
            json=body | ({"projection": projection} if projection else {}),
            headers={"authorization": f"Bearer {web_server.token}"},
        )
        assert created.status_code == 201, created.text
        ep_id = created.json()["id"]
        html = portal.get(f"/portal/endpoints/{ep_id}").text
        assert _preview(html) == wanted[path], path
        assert ('id="preview-projected"' in html) == (projection is not None)
        # What is sent is what was shown.
        answer = portal.post(
            f"/portal/endpoints/{ep_id}/test",
            data={"csrf": csrf_of(html), "event_type": "order.previewed"},
        )
        assert answer.status_code == 303
        (got,) = receiver.wait_for(1, path)
        assert json.loads(got.body) == wanted[path]


def test_event_type_descriptions_follow_the_readers_language(web_server: ServerHandle) -> None:
    dash = dashboard_client(web_server)
    csrf = csrf_of(dash.get("/dashboard/event-types/new").text)
    form = {
        "csrf": csrf,
        "name": "course.finished",
        "description": "The buyer finished the course.",
        "description:es": "El comprador terminó el curso.",
        "description:pt-BR": "",
    }
    assert dash.post("/dashboard/event-types/new", data=form).status_code == 303
    api = {"authorization": f"Bearer {web_server.token}"}
    url = f"{web_server.url}/api/v1/event-type/course.finished"
    assert httpx.get(url, headers=api).json()["descriptions"] == {"es": form["description:es"]}
    # A language the form does not show is kept when the form is saved.
    httpx.patch(url, headers=api, json={"descriptions": {"es": "x", "fr": "Le cours est fini."}})
    edit = dash.get("/dashboard/event-types/course.finished").text
    assert 'name="description:pt-BR"' in edit and 'value="x"' in edit
    saved = dash.post(
        "/dashboard/event-types/course.finished",
        data=form | {"csrf": csrf_of(edit), "description:pt-BR": "O comprador concluiu o curso."},
    )
    assert saved.status_code == 303
    assert httpx.get(url, headers=api).json()["descriptions"] == {
        "es": "El comprador terminó el curso.",
        "pt-BR": "O comprador concluiu o curso.",
        "fr": "Le cours est fini.",
    }

    portal = portal_client(web_server, _app(web_server, "multilingual"))
    for lang, text in (
        ("en", "The buyer finished the course."),
        ("es", "El comprador terminó el curso."),
        ("pt-BR", "O comprador concluiu o curso."),
    ):
        portal.cookies.set("pb_lang", lang)
        for page in ("/portal/catalog", "/portal/endpoints/new"):
            html = portal.get(page).text
            assert text in html, (lang, page)
            assert ("The buyer finished the course." in html) == (lang == "en"), (lang, page)
        dash.cookies.set("pb_lang", lang)
        assert text in dash.get("/dashboard/event-types").text, lang
    # The catalog's search finds it by the words the reader sees.
    portal.cookies.set("pb_lang", "es")
    found = portal.get("/portal/catalog", params={"q": "terminó"}).text
    assert re.search(r'<details class="card event-type" id="et-course.finished"[^>]* open>', found)
