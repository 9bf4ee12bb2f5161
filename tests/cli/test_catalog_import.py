"""The shipped catalogs (examples/catalogs) load with one CLI command into a running server,
and then check real messages: with validation on, every example is accepted and a broken
copy of it is refused, naming the field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.cli import ok_json
from tests.support.server import ServerHandle

CATALOGS = Path(__file__).resolve().parents[2] / "examples" / "catalogs"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_shipped_catalogs_load_with_one_command_and_validate_messages(
    make_server: Callable[..., ServerHandle],
) -> None:
    server = make_server(validate_payloads=True)
    expected = {}
    for name in ("commerce.json", "billing.json"):
        catalog = json.loads((CATALOGS / name).read_text())
        rows = ok_json(server, "event-type", "import", str(CATALOGS / name))
        assert {r["result"] for r in rows} == {"created"}, rows
        expected |= {e["name"]: e for e in catalog["eventTypes"]}

    client = httpx.Client(
        base_url=server.url + "/api/v1",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )
    listed = client.get("/event-type/", params={"limit": 250, "with_content": True}).json()
    assert {e["name"] for e in listed["data"]} == set(expected)
    # The commerce catalog says once where the product is: each of its event types has it.
    paths = {e["name"]: e["productPath"] for e in listed["data"]}
    commerce = json.loads((CATALOGS / "commerce.json").read_text())["eventTypes"]
    assert {paths[e["name"]] for e in commerce} == {"data.product.id"}
    app = client.post("/app/", json={"name": "Store"}).json()["id"]
    for name, event_type in expected.items():
        example = event_type["schemas"]["1"]["examples"][0]
        r = client.post(f"/app/{app}/msg/", json={"eventType": name, "payload": example})
        assert r.status_code == 202, (name, r.text)
        broken = copy.deepcopy(example)
        broken["created_at"] = 12
        r = client.post(f"/app/{app}/msg/", json={"eventType": name, "payload": broken})
        assert r.status_code == 422, name
        assert r.json()["detail"][0]["loc"] == ["body", "payload", "created_at"]
