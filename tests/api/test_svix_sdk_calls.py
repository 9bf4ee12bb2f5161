"""The svix SDK calls that used to answer 404, served with Svix's shapes: an attempt's
content expunged, the health check, replaying an endpoint's missing messages, and the usage
statistics (application stats, event-type aggregate), each through the Python SDK."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from svix.api import (
    ApplicationIn,
    AppUsageStatsIn,
    EndpointIn,
    MessageIn,
    ReplayIn,
)

from postback.domain import utcnow
from tests.support.polling import eventually
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle


def _finished(server: ServerHandle, task_id: str) -> dict:
    svix = server.svix()
    task = eventually(
        lambda: (t := svix.background_task.get(task_id)).status.value == "finished" and t
    )
    return task.data


def test_expunge_an_attempts_content_and_the_health_check(
    server: ServerHandle, receiver: Receiver
) -> None:
    svix = server.svix()
    svix.health.get()  # 204: the SDK raises on anything else
    app = svix.application.create(ApplicationIn(name="shop")).id
    svix.endpoint.create(app, EndpointIn(url=receiver.route("/h", ok(body="secret stuff"))))
    msg = svix.message.create(app, MessageIn(event_type="a.b", payload={"n": 1}))
    attempts = eventually(lambda: svix.message_attempt.list_by_msg(app, msg.id).data)
    assert attempts[0].response == "secret stuff"
    svix.message_attempt.expunge_content(app, msg.id, attempts[0].id)
    assert svix.message_attempt.get(app, msg.id, attempts[0].id).response == "EXPUNGED"


def test_replay_missing_sends_what_the_endpoint_never_got(
    server: ServerHandle, receiver: Receiver
) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop")).id
    first = svix.endpoint.create(app, EndpointIn(url=receiver.route("/first", ok())))
    before = utcnow() - timedelta(seconds=5)
    for n in range(3):
        svix.message.create(app, MessageIn(event_type="a.b", payload={"n": n}))
    svix.message.create(app, MessageIn(event_type="other", payload={"n": 9}))
    receiver.wait_for(4, "/first")
    # Created after the messages, for a.b only: replay sends it the three a.b messages.
    late = svix.endpoint.create(
        app, EndpointIn(url=receiver.route("/late", ok()), event_types=["a.b"])
    )
    out = svix.endpoint.replay_missing(app, late.id, ReplayIn(since=before))
    assert out.task.value == "endpoint.replay"
    assert _finished(server, out.id) == {
        "endpointId": late.id,
        "since": before.isoformat(),
        "until": None,
        "messagesSent": 3,
    }
    got = receiver.wait_for(3, "/late")
    assert sorted(json.loads(r.body)["n"] for r in got) == [0, 1, 2]
    # The first endpoint had them all: nothing is sent again.
    again = svix.endpoint.replay_missing(app, first.id, ReplayIn(since=before))
    assert _finished(server, again.id)["messagesSent"] == 0
    assert len(receiver.received("/first")) == 4


def test_usage_statistics_as_background_tasks(server: ServerHandle, receiver: Receiver) -> None:
    svix = server.svix()
    since = utcnow() - timedelta(minutes=1)
    busy = svix.application.create(ApplicationIn(name="busy", uid="busy")).id
    quiet = svix.application.create(ApplicationIn(name="quiet")).id
    svix.endpoint.create(busy, EndpointIn(url=receiver.route("/a", ok())))
    svix.endpoint.create(busy, EndpointIn(url=receiver.route("/b", ok()), event_types=["x.y"]))
    svix.endpoint.create(quiet, EndpointIn(url=receiver.route("/c", ok()), event_types=["z"]))
    for _ in range(2):
        svix.message.create(busy, MessageIn(event_type="x.y", payload={}))
    receiver.wait_for(4)

    stats = svix.statistics.aggregate_app_stats(
        AppUsageStatsIn(
            since=since, until=utcnow() + timedelta(minutes=1), app_ids=["busy", quiet, "nope"]
        )
    )
    assert stats.unresolved_app_ids == ["nope"] and stats.task.value == "application.stats"
    data = _finished(server, stats.id)
    assert sorted(data["appStats"], key=lambda s: s["appId"]) == sorted(
        [
            {"appId": busy, "appUid": "busy", "messageDestinations": 4},
            {"appId": quiet, "appUid": None, "messageDestinations": 0},
        ],
        key=lambda s: s["appId"],
    )

    aggregate = svix.statistics.aggregate_event_types()
    assert aggregate.task.value == "event-type.aggregate"
    by_app = {e["appId"]: e for e in _finished(server, aggregate.id)["event_types"]}
    assert by_app[busy]["explicitlySubscribedEventTypes"] == ["x.y"]
    assert by_app[busy]["hasCatchAllEndpoint"] is True
    assert by_app[quiet] == {
        "appId": quiet,
        "explicitlySubscribedEventTypes": ["z"],
        "hasCatchAllEndpoint": False,
    }


def test_calls_not_supported_answer_404_in_svix_error_shape(server: ServerHandle) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop")).id
    auth = {"authorization": f"Bearer {server.token}"}
    for method, path in [
        ("POST", f"/api/v1/app/{app}/msg/expunge-all-contents"),
        ("POST", f"/api/v1/app/{app}/msg/precheck/active"),
        ("POST", "/api/v1/event-type/import/openapi"),
    ]:
        answer = httpx.request(method, server.url + path, headers=auth, json={}, timeout=10)
        assert answer.status_code == 404, path
        assert set(answer.json()) == {"code", "detail"} and answer.json()["code"] == "not_found"


def test_usage_statistics_of_no_known_application_are_a_422_and_start_no_task(
    server: ServerHandle,
) -> None:
    auth = {"authorization": f"Bearer {server.token}"}
    now = utcnow()
    body = {
        "since": (now - timedelta(days=1)).isoformat(),
        "until": now.isoformat(),
        "appIds": ["app_nobody", "no-such-uid"],
    }
    r = httpx.post(f"{server.url}/api/v1/stats/usage/app", json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "appIds"]
    tasks = httpx.get(f"{server.url}/api/v1/background-task", headers=auth).json()["data"]
    assert tasks == []
