"""The portal's endpoint form edits payload filters and projections (issue 10's rules),
with the same checks as the API, and the endpoint page shows them."""

from __future__ import annotations

import html
import json

import httpx

from postback.store.store import Store
from tests.support.receivers import Receiver
from tests.support.server import ServerHandle
from tests.web import test_web_http
from tests.web.test_web_http import _app, csrf_of, portal_client

web_server = test_web_http.web_server
receiver = test_web_http.receiver

RULE = {"data.purchase.price.value": {"$gte": 100}}


def _form(portal: httpx.Client, receiver: Receiver, **fields: str) -> dict[str, str]:
    csrf = csrf_of(portal.get("/portal/endpoints/new").text)
    return {"csrf": csrf, "url": receiver.url + "/hook", "scope": "all", **fields}


def test_filter_and_projection_are_saved_shown_and_cleared(
    web_server: ServerHandle, receiver: Receiver
) -> None:
    app_id = _app(web_server, "rules")
    portal = portal_client(web_server, app_id)
    form = _form(
        portal,
        receiver,
        payload_filter=json.dumps(RULE),
        projection_mode="exclude",
        projection="/data/buyer\n\n/data/purchase/payment\n",
    )
    created = portal.post("/portal/endpoints/new", data=form)
    assert created.status_code == 303, created.text
    ep_id = created.headers["location"].split("/")[-1].split("?")[0]

    async def stored(store: Store) -> tuple[object, object]:
        ep = await store.get_endpoint(app_id, ep_id)
        return ep["payload_filter"], ep["projection"]

    assert web_server.call(stored) == (RULE, {"exclude": ["/data/buyer", "/data/purchase/payment"]})
    page = html.unescape(portal.get(f"/portal/endpoints/{ep_id}").text)
    assert "data.purchase.price.value" in page and "/data/buyer, /data/purchase/payment" in page
    edit = html.unescape(portal.get(f"/portal/endpoints/{ep_id}/edit").text)
    assert '"$gte": 100' in edit and 'value="exclude" checked' in edit

    cleared = portal.post(
        f"/portal/endpoints/{ep_id}/edit",
        data=form | {"payload_filter": "", "projection_mode": "all", "projection": ""},
    )
    assert cleared.status_code == 303
    assert web_server.call(stored) == (None, None)


def test_bad_rules_show_the_form_again_with_the_place(
    web_server: ServerHandle, receiver: Receiver
) -> None:
    portal = portal_client(web_server, _app(web_server, "bad rules"))
    cases = [
        ({"payload_filter": "{not json"}, "The payload filter must be JSON."),
        (
            {"payload_filter": '{"data.amount": {"$gt": [1]}}'},
            "(data.amount.$gt: $gt takes a number or a string)",
        ),
        ({"projection_mode": "include", "projection": ""}, "List at least one field"),
        ({"projection_mode": "exclude", "projection": "data/buyer"}, "(exclude.0: a JSON"),
    ]
    for fields, words in cases:
        answer = portal.post("/portal/endpoints/new", data=_form(portal, receiver, **fields))
        assert answer.status_code == 422, fields
        text = html.unescape(answer.text)
        assert words in text, (fields, text[:2000])
        # What was typed is shown again, to be corrected rather than retyped.
        for value in fields.values():
            assert value in text
    spanish = portal.post(
        "/portal/endpoints/new",
        data=_form(portal, receiver, payload_filter="[1]"),
        headers={"accept-language": "es"},
    )
    assert "El filtro del contenido no es válido." in html.unescape(spanish.text)
