"""An application's retentionPeriod (days its records are kept; postback's own field, named
after Svix's payloadRetentionPeriod) through the API, and erasing one message's content."""

from __future__ import annotations

import httpx

from tests.support.server import ServerHandle


def _api(server: ServerHandle) -> httpx.Client:
    headers = {"authorization": f"Bearer {server.token}"}
    return httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=10)


def test_retention_period_is_kept_patched_and_checked(server: ServerHandle) -> None:
    api = _api(server)
    created = api.post("/app/", json={"name": "Billing", "retentionPeriod": 30})
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    assert created.json()["retentionPeriod"] == 30
    patched = api.patch(f"/app/{app_id}", json={"retentionPeriod": 7})
    assert patched.json()["retentionPeriod"] == 7
    assert api.patch(f"/app/{app_id}", json={"name": "B"}).json()["retentionPeriod"] == 7
    assert api.get(f"/app/{app_id}").json()["retentionPeriod"] == 7
    assert api.put(f"/app/{app_id}", json={"name": "B"}).json()["retentionPeriod"] is None
    for bad in (0, -1, 100_000, "ten", 1.5):
        answer = api.post("/app/", json={"name": "X", "retentionPeriod": bad})
        assert answer.status_code == 422, bad
        assert [d["loc"] for d in answer.json()["detail"]] == [["body", "retentionPeriod"]]
        answer = api.patch(f"/app/{app_id}", json={"retentionPeriod": bad})
        assert answer.status_code == 422, bad
    assert api.get(f"/app/{app_id}").json()["retentionPeriod"] is None
    # The svix SDK reads an application without knowing the field.
    assert server.svix().application.get(app_id).name == "B"


def test_erasing_a_message_leaves_a_tombstone(server: ServerHandle) -> None:
    api = _api(server)
    app_id = api.post("/app/", json={"name": "Shop"}).json()["id"]
    sent = api.post(
        f"/app/{app_id}/msg/", json={"eventType": "buyer.updated", "payload": {"cpf": "1"}}
    )
    assert sent.status_code == 202, sent.text
    msg_id = sent.json()["id"]
    assert api.delete(f"/app/{app_id}/msg/{msg_id}/content").status_code == 204
    assert api.delete(f"/app/{app_id}/msg/{msg_id}/content/").status_code == 204  # twice
    shown = api.get(f"/app/{app_id}/msg/{msg_id}").json()
    assert shown["id"] == msg_id and shown["eventType"] == "buyer.updated"
    assert "cpf" not in str(shown.get("payload"))
    listed = api.get(f"/app/{app_id}/msg/").json()["data"]
    assert [m["id"] for m in listed] == [msg_id]
    unknown = api.delete(f"/app/{app_id}/msg/msg_01m8tsjav192grecp5n7r38xj7/content")
    assert unknown.status_code == 404
