"""Event-type descriptions in other languages (``descriptions``, postback's own field): kept
by create, replace and patch on both databases, checked at the edge, left alone by the
svix SDK, which does not know the field."""

from __future__ import annotations

import httpx

from tests.support.server import ServerHandle

TRANSLATED = {"es": "Se aprobó una compra.", "pt-BR": "Uma compra foi aprovada."}


def _api(server: ServerHandle) -> httpx.Client:
    headers = {"authorization": f"Bearer {server.token}"}
    return httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=10)


def test_descriptions_are_kept_replaced_and_patched(server: ServerHandle) -> None:
    api = _api(server)
    body = {"name": "purchase.approved", "description": "A purchase was approved."}
    created = api.post("/event-type/", json=body | {"descriptions": TRANSLATED})
    assert created.status_code == 201, created.text
    assert created.json()["descriptions"] == TRANSLATED
    assert api.get("/event-type/purchase.approved").json()["descriptions"] == TRANSLATED
    listed = api.get("/event-type/").json()["data"]
    assert [et["descriptions"] for et in listed] == [TRANSLATED]
    patched = api.patch("/event-type/purchase.approved", json={"descriptions": {"es": "Otra."}})
    assert patched.json()["descriptions"] == {"es": "Otra."}
    assert patched.json()["description"] == "A purchase was approved."  # untouched
    # A patch without the field keeps it; a replacement without it has none.
    assert api.patch("/event-type/purchase.approved", json={"deprecated": True}).json()[
        "descriptions"
    ] == {"es": "Otra."}
    replaced = api.put("/event-type/purchase.approved", json={"description": "Approved."})
    assert replaced.json()["descriptions"] is None
    # The svix SDK reads and writes event types without knowing the field.
    from svix.api import EventTypeIn

    sdk = server.svix().event_type.create(EventTypeIn(name="plain.one", description="x"))
    assert sdk.description == "x"
    assert api.get("/event-type/plain.one").json()["descriptions"] is None


def test_descriptions_are_checked_at_the_edge(server: ServerHandle) -> None:
    api = _api(server)
    for bad, where in (
        ({"not a tag!": "x"}, "descriptions"),
        ({"es": "x" * 4097}, "es"),
        ({"es": 3}, "es"),
        ("in spanish", "descriptions"),
    ):
        answer = api.post("/event-type/", json={"name": "a.b", "descriptions": bad})
        assert answer.status_code == 422, bad
        locs = [item["loc"] for item in answer.json()["detail"]]
        assert any(loc[:2] == ["body", "descriptions"] and where in loc for loc in locs), locs
    assert api.get("/event-type/a.b").status_code == 404
