"""What an endpoint gets and why it stopped, in the reader's words (en, es, pt-BR): the
portal's endpoint pages and message page, and the dashboard's disabled endpoints and
operational webhooks; the portal's "One product" routed by the event type's productPath."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import httpx

from postback import reasons
from postback.domain import encode_json
from postback.signing import generate_secret
from postback.store import schema
from postback.store.core import OPERATIONAL_APP_ID
from postback.store.store import Store
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle
from tests.web import test_web_http
from tests.web.test_web_http import _app, csrf_of, dashboard_client, portal_client

web_server = test_web_http.web_server
receiver = test_web_http.receiver

SINCE = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)


def _endpoint(server: ServerHandle, app_id: str, **values: object) -> str:
    async def create(store: Store) -> str:
        row = await store.create_endpoint(
            app_id, {"url": "http://127.0.0.1:9/hook", "secret": generate_secret(), **values}
        )
        return row["id"]

    return server.call(create)


def _auto_disabled(server: ServerHandle, app_id: str, ep_id: str) -> None:
    async def disable(store: Store) -> None:
        await store.update_endpoint(app_id, ep_id, {"disabled": True})
        async with store.engine.begin() as conn:
            await conn.execute(
                schema.endpoints.update()
                .where(schema.endpoints.c.id == ep_id)
                .values(disabled_reason=reasons.stored(reasons.failing_since(SINCE, 12)))
            )

    server.call(disable)


def _text(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">(.*?)</', html, re.S)
    assert found, element_id
    return " ".join(found.group(1).split())


def test_the_endpoint_page_says_what_it_gets_in_three_languages(web_server: ServerHandle) -> None:
    app_id = _app(web_server, "words")
    ep = _endpoint(
        web_server,
        app_id,
        event_types=["purchase.approved"],
        product="42",
        payload_filter={"data.purchase.price.value": {"$gte": 100}},
        projection={"exclude": ["/data/buyer"]},
    )
    portal = portal_client(web_server, app_id)
    said = {
        lang: _text(
            portal.get(f"/portal/endpoints/{ep}", headers={"accept-language": lang}).text,
            "endpoint-summary",
        )
        for lang in ("en", "es", "pt-BR")
    }
    assert said["en"] == (
        "It gets these event types: purchase.approved. Only product 42. Only messages where "
        "data.purchase.price.value is at least 100. These fields are removed before "
        "sending: /data/buyer."
    )
    assert "Solo el producto 42." in said["es"] and "es al menos 100" in said["es"]
    assert "Estos campos se quitan antes del envío: /data/buyer." in said["es"]
    assert "Só o produto 42." in said["pt-BR"] and "é pelo menos 100" in said["pt-BR"]

    # A product chosen by a payload filter is shown as that product, not "All products".
    by_filter = _endpoint(web_server, app_id, payload_filter={"data.product.id": 7})
    page = portal.get(f"/portal/endpoints/{by_filter}", headers={"accept-language": "en"}).text
    assert _text(page, "endpoint-products") == "Only product 7 (by its payload filter)."
    listing = portal.get("/portal/endpoints", headers={"accept-language": "en"}).text
    assert "Only product 7 (by its payload filter)." in listing and "Only product 42." in listing


def test_an_auto_disabled_endpoint_says_why_in_the_readers_language(
    web_server: ServerHandle,
) -> None:
    app_id = _app(web_server, "stopped")
    ep = _endpoint(web_server, app_id)
    _auto_disabled(web_server, app_id, ep)
    portal = portal_client(web_server, app_id)
    expected = {
        "en": "every delivery failed since 5 March 2026, 14:30 UTC (12 failed attempts)",
        "es": "todas las entregas fallaron desde el 5 de marzo de 2026, 14:30 UTC "
        "(12 intentos fallidos)",
        "pt-BR": "todas as entregas falharam desde 5 de março de 2026, 14:30 UTC "
        "(12 tentativas com falha)",
    }
    dash = dashboard_client(web_server)
    for lang, words in expected.items():
        page = portal.get(f"/portal/endpoints/{ep}", headers={"accept-language": lang}).text
        assert words in _text(page, "disabled-reason")
        assert "T14:30:00" not in page  # no raw ISO time
        assert words in portal.get("/portal/endpoints", headers={"accept-language": lang}).text
        assert words in dash.get("/dashboard/", headers={"accept-language": lang}).text


def test_the_message_page_lists_the_endpoints_it_did_not_go_to(web_server: ServerHandle) -> None:
    app_id = _app(web_server, "not sent")
    gets = _endpoint(web_server, app_id)
    other_type = _endpoint(web_server, app_id, event_types=["purchase.refunded"])
    other_product = _endpoint(web_server, app_id, product="7")

    async def send(store: Store) -> str:
        row, _ = await store.create_message(
            app_id,
            {
                "event_type": "purchase.approved",
                "payload": encode_json({"data": {"product": {"id": "42"}}}),
                "product": "42",
            },
        )
        return row["id"]

    msg = web_server.call(send)
    portal = portal_client(web_server, app_id)
    page = portal.get(f"/portal/messages/{msg}", headers={"accept-language": "es"}).text
    rows = {
        ep: re.search(rf'{ep}">.*?</tr>', page, re.S) for ep in (gets, other_type, other_product)
    }
    assert all(rows.values()), rows
    assert "No enviado" not in rows[gets].group(0)  # type: ignore[union-attr]
    assert "no está suscrito a purchase.approved" in rows[other_type].group(0)  # type: ignore[union-attr]
    assert "el mensaje es del producto 42; el endpoint, del producto 7" in rows[  # type: ignore[union-attr]
        other_product
    ].group(0)
    assert _text(page, "message-product") == "42"


def test_the_dashboard_shows_operational_webhooks_and_their_events(
    web_server: ServerHandle,
) -> None:
    dash = dashboard_client(web_server)
    home = dash.get("/dashboard/", headers={"accept-language": "en"}).text
    assert "Operational webhooks" in home

    async def register(store: Store) -> None:
        await store.create_endpoint(
            OPERATIONAL_APP_ID,
            {
                "url": "http://127.0.0.1:9/ops",
                "secret": generate_secret(),
                "event_types": ["endpoint.disabled"],
            },
        )

    web_server.call(register)
    app_id = _app(web_server, "told")
    ep = _endpoint(web_server, app_id)

    async def disable(store: Store) -> None:
        await store.update_endpoint(app_id, ep, {"disabled": True})

    web_server.call(disable)
    home = dash.get("/dashboard/", headers={"accept-language": "pt-BR"}).text
    assert "http://127.0.0.1:9/ops" in _text(home, "ops-endpoints")
    events = re.search(r'id="ops-events">(.*?)</table>', home, re.S)
    assert events and "endpoint.disabled" in events.group(1) and ep in events.group(1)
    assert "Desativado a pedido." in events.group(1)


def test_the_operator_declares_the_product_path_on_the_event_type_form(
    web_server: ServerHandle,
) -> None:
    dash = dashboard_client(web_server)
    csrf = csrf_of(dash.get("/dashboard/event-types/new").text)
    form = {"csrf": csrf, "name": "sale.made", "product_path": "data.item.sku"}
    assert dash.post("/dashboard/event-types/new", data=form).status_code == 303
    assert web_server.call(lambda s: s.get_event_type("sale.made"))["product_path"] == (
        "data.item.sku"
    )
    assert 'value="data.item.sku"' in dash.get("/dashboard/event-types/sale.made").text
    bad = dash.post(
        "/dashboard/event-types/sale.made",
        data={"csrf": csrf, "product_path": "data..sku"},
        headers={"accept-language": "es"},
    )
    assert bad.status_code == 422 and "ruta con puntos" in bad.text
    cleared = dash.post("/dashboard/event-types/sale.made", data={"csrf": csrf, "product_path": ""})
    assert cleared.status_code == 303
    assert web_server.call(lambda s: s.get_event_type("sale.made"))["product_path"] is None


def test_the_portals_one_product_gets_that_product_without_channels(
    web_server: ServerHandle, receiver: Receiver
) -> None:
    """The portal's "One product" with the product path the operator declared on the
    event type: a sender that sends no channels reaches it, and only it (issue 21, item 1)."""
    api = {"authorization": f"Bearer {web_server.token}"}
    made = httpx.post(
        f"{web_server.url}/api/v1/event-type/",
        json={"name": "course.bought", "productPath": "data.course.id"},
        headers=api,
    )
    assert made.status_code == 201, made.text
    app_id = _app(web_server, "one product from the portal")
    portal = portal_client(web_server, app_id)
    made_ids = {}
    for path, scope, product in (
        ("/p-all", "all", ""),
        ("/p-course", "one", "curso-77"),
        ("/p-other", "one", "curso-88"),
    ):
        receiver.route(path, ok())
        form = {
            "csrf": csrf_of(portal.get("/portal/endpoints/new").text),
            "url": receiver.url + path,
            "description": "",
            "scope": scope,
            "product": product,
        }
        answer = portal.post("/portal/endpoints/new", data=form)
        assert answer.status_code == 303, answer.text[:2000]
        made_ids[path] = answer.headers["location"].split("/")[-1].split("?")[0]
    stored = httpx.get(
        f"{web_server.url}/api/v1/app/{app_id}/endpoint/{made_ids['/p-course']}", headers=api
    ).json()
    assert (stored["product"], stored["channels"]) == ("curso-77", None)  # not a channel

    # The sender names the product in the payload only, where the event type says it is.
    body = {"eventType": "course.bought", "payload": {"data": {"course": {"id": "curso-77"}}}}
    sent = httpx.post(f"{web_server.url}/api/v1/app/{app_id}/msg/", json=body, headers=api)
    assert sent.status_code == 202, sent.text
    receiver.wait_for(1, "/p-course")
    receiver.wait_for(1, "/p-all")
    assert receiver.received("/p-other") == []

    page = portal.get(
        f"/portal/endpoints/{made_ids['/p-course']}", headers={"accept-language": "pt-BR"}
    ).text
    assert _text(page, "endpoint-products") == "Só o produto curso-77."
    message = portal.get(
        f"/portal/messages/{sent.json()['id']}", headers={"accept-language": "pt-BR"}
    ).text
    other = re.search(rf'{made_ids["/p-other"]}">.*?</tr>', message, re.S)
    assert other and (
        "Não enviado: a mensagem é do produto curso-77; o endpoint, do produto curso-88."
        in html.unescape(other.group(0))
    )
