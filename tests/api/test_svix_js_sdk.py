"""The svix JavaScript SDK, 1.x and 2.x from npm, against a live postback: each reads back
the names it writes (1.x filterTypes and rateLimit, 2.x eventTypes and throttleRate), and
the calls that used to answer 404 (attempt content expunged, replay-missing, usage
statistics) answer in Svix's shapes."""

from __future__ import annotations

import json
import subprocess

import pytest
from svix.api import EventTypeIn

from tests.support.node_sdks import NO_NODE, SCRIPT, node_missing, sdk_dir
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle

pytestmark = [
    pytest.mark.skipif(node_missing(), reason=NO_NODE),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@pytest.mark.parametrize("major", ["1", "2"])
def test_the_svix_javascript_sdk(server: ServerHandle, receiver: Receiver, major: str) -> None:
    server.svix().event_type.create(EventTypeIn(name="a.b", description="d"))
    hook = receiver.route("/js", ok(body="receiver said this"))
    run = subprocess.run(
        ["node", str(SCRIPT), str(sdk_dir(major)), server.url, server.token, hook],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["version"].startswith(f"{major}.")
    if major == "1":
        assert out["read"]["filterTypes"] == ["a.b"] and out["read"]["rateLimit"] == 5
    else:
        assert out["read"]["eventTypes"] == ["a.b"]
    assert out["read"]["throttleRate"] == 5
    assert out["expungedResponse"] == "EXPUNGED"
    assert out["replay"]["task"] == "endpoint.replay"
    assert out["replay"]["data"]["messagesSent"] == 1
    assert out["stats"]["task"] == "application.stats" and out["stats"]["unresolved"] == []
    (app_stats,) = out["stats"]["data"]["appStats"]
    assert app_stats["appId"] == out["appId"] and app_stats["messageDestinations"] == 2
    (subscribed,) = [
        e for e in out["aggregate"]["data"]["event_types"] if e["appId"] == out["appId"]
    ]
    assert subscribed["explicitlySubscribedEventTypes"] == ["a.b"]
    assert subscribed["hasCatchAllEndpoint"] is True  # the endpoint made for the replay
    statuses = {d["id"]: d["status"] for d in out["destinations"]}
    assert statuses[out["endpointId"]] == 0
    assert len(receiver.received("/js")) == 2  # the message, then its replay
