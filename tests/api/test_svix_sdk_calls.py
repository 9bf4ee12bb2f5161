"""The svix SDK calls that used to answer 404, served with Svix's shapes: an attempt's
content expunged, the health check, replaying an endpoint's missing messages, an endpoint's
attempt statistics and the usage statistics (application stats, event-type aggregate), each
through the Python SDK; and those not supported, answered in Svix's error shape and listed
in the README."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from svix.api import (
    ApplicationIn,
    AppUsageStatsIn,
    BulkReplayIn,
    EndpointGetAttemptStatsOptions,
    EndpointIn,
    MessageIn,
    ReplayIn,
)
from svix.exceptions import HttpError

from postback.api.routes.unsupported import UNSUPPORTED
from postback.domain import utcnow
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle

ROOT = Path(__file__).resolve().parents[2]


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


def test_an_endpoints_attempt_statistics(server: ServerHandle, receiver: Receiver) -> None:
    svix = server.svix()
    start = utcnow()
    app = svix.application.create(ApplicationIn(name="shop")).id
    flaky = svix.endpoint.create(app, EndpointIn(url=receiver.route("/flaky", fail(503)))).id
    other = svix.endpoint.create(app, EndpointIn(url=receiver.route("/other", ok()))).id
    svix.message.create(app, MessageIn(event_type="a.b", payload={}))
    # The test schedule: three attempts, all failed; then one that succeeds.
    receiver.wait_for(3, "/flaky")
    receiver.route("/flaky", ok())
    svix.message.create(app, MessageIn(event_type="a.b", payload={}))
    receiver.wait_for(4, "/flaky")

    def counted(**window: object) -> tuple[int, int, int]:
        options = EndpointGetAttemptStatsOptions(**window)  # type: ignore[arg-type]
        got = svix.endpoint.get_attempt_stats(app, flaky, options)
        return got.success, got.fail, got.canceled

    assert eventually(lambda: counted() == (1, 3, 0) or None, what="the four attempts")
    now = utcnow()
    assert counted(since=start, until=now) == (1, 3, 0)
    # The window is whole hours: one from now back into this hour holds them all (when the
    # hour has not turned since the test began), one that ended two hours ago none.
    if start.replace(minute=0, second=0, microsecond=0) == now.replace(
        minute=0, second=0, microsecond=0
    ):
        assert counted(since=now, until=now) == (1, 3, 0)
    assert counted(until=now - timedelta(hours=2)) == (0, 0, 0)
    assert svix.endpoint.get_attempt_stats(app, other).success == 2
    missing = httpx.get(
        f"{server.url}/api/v1/app/{app}/endpoint/ep_nope/attempt-stats",
        headers={"authorization": f"Bearer {server.token}"},
    )
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


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
    """Each call the README lists as not supported, and the families of Svix's API postback
    has none of, answer 404 as Svix's server answers an unknown resource."""
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop")).id
    ep = svix.endpoint.create(app, EndpointIn(url="https://hooks.example/h")).id
    auth = {"authorization": f"Bearer {server.token}"}
    readme = (ROOT / "README.md").read_text()
    not_supported = readme[readme.index("**Not supported**") : readme.index("## Web UI")]
    calls = [
        (method, path.format(app_id=app, endpoint_id=ep), name)
        for method, path, name in UNSUPPORTED
    ]
    families = [
        ("GET", "/api/v1/stream", "streams"),
        ("POST", f"/api/v1/app/{app}/integration", "integrations"),
        ("GET", "/api/v1/ingest/source", "ingest"),
        ("GET", "/api/v1/connector", "connectors"),
        ("GET", "/api/v1/environment", "environments"),
        ("GET", f"/api/v1/app/{app}/endpoint/{ep}/transformation", "transformations"),
    ]
    for method, path, name in [*calls, *families]:
        assert f"`{name}`" in not_supported or name in not_supported, name
        answer = httpx.request(method, server.url + path, headers=auth, json={}, timeout=10)
        assert answer.status_code == 404, (path, answer.status_code)
        assert set(answer.json()) == {"code", "detail"} and answer.json()["code"] == "not_found"
    # The SDK sees an HTTP error it can tell from any other: a 404, with Svix's body.
    with pytest.raises(HttpError) as raised:
        svix.endpoint.bulk_replay(app, ep, BulkReplayIn(since=utcnow()))
    assert raised.value.status_code == 404 and raised.value.code == "not_found"


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
