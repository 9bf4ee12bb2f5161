"""/metrics after real deliveries, parsed with prometheus_client's own parser; access modes;
one log line per attempt, in text and JSON."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from svix.api import ApplicationIn, EndpointIn, EndpointPatch, MessageIn

from postback import metrics
from postback.config import SettingsError
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import SECRET_KEY, ServerHandle

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def scrape(url: str, token: str | None = None) -> Samples:
    request = urllib.request.Request(url + "/metrics")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_after_real_deliveries(server: ServerHandle, receiver: Receiver) -> None:
    before = scrape(server.url)
    client = server.svix()
    app = client.application.create(ApplicationIn(name="metrics"))
    client.endpoint.create(app.id, EndpointIn(url=receiver.route("/ok", ok())))
    # Fails every time: 1 try + 2 retries with the test schedule (0.05 s, 0.1 s).
    client.endpoint.create(app.id, EndpointIn(url=receiver.route("/fail", fail(503))))
    parked = client.endpoint.create(app.id, EndpointIn(url=receiver.route("/off", ok())))
    client.endpoint.patch(app.id, parked.id, EndpointPatch(disabled=True))
    for n in range(4):
        client.message.create(app.id, MessageIn(event_type="order.paid", payload={"n": n}))

    def settled() -> bool:
        now = scrape(server.url)
        done = value(now, "postback_delivery_attempts_total", outcome="failure")
        return done - value(before, "postback_delivery_attempts_total", outcome="failure") >= 12

    eventually(settled)
    after = scrape(server.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("postback_messages_accepted_total") == 4
    assert delta("postback_delivery_attempts_total", outcome="success") == 4
    assert delta("postback_delivery_attempts_total", outcome="failure") == 12
    assert delta("postback_delivery_attempts_total", outcome="error") == 0
    assert delta("postback_attempt_duration_seconds_count") == 16
    assert delta("postback_attempt_duration_seconds_bucket", le="+Inf") == 16
    assert delta("postback_attempt_duration_seconds_sum") > 0
    assert len(receiver.received("/off")) == 0
    # Read from the database at scrape time.
    assert value(after, "postback_endpoints_disabled") == 1
    assert value(after, "postback_queue_deliveries", state="due") == 0
    assert value(after, "postback_queue_oldest_due_seconds") == 0
    assert value(after, "postback_worker_concurrency") >= server.settings.worker_concurrency
    assert ("postback_worker_in_flight", ()) in after


def test_a_due_backlog_shows_depth_and_age(make_server: Callable[..., ServerHandle]) -> None:
    # A worker that claims nothing (no slots) leaves what is queued due and aging.
    server = make_server(worker_concurrency=0)
    client = server.svix()
    app = client.application.create(ApplicationIn(name="backlog"))
    client.endpoint.create(app.id, EndpointIn(url="http://127.0.0.1:9/never"))
    later = client.endpoint.create(app.id, EndpointIn(url="http://127.0.0.1:9/later"))
    for n in range(3):
        client.message.create(app.id, MessageIn(event_type="order.paid", payload={"n": n}))
    # Disabling parks the endpoint's pending deliveries (outside the queue's gauges).
    client.endpoint.patch(app.id, later.id, EndpointPatch(disabled=True))
    time.sleep(1.1)
    samples = scrape(server.url)
    assert value(samples, "postback_queue_deliveries", state="due") == 3
    assert ("postback_queue_deliveries", (("state", "paused"),)) not in samples
    assert value(samples, "postback_queue_deliveries", state="scheduled") == 0
    assert value(samples, "postback_endpoints_disabled") == 1
    assert value(samples, "postback_worker_in_flight") == 0
    assert value(samples, "postback_queue_oldest_due_seconds") >= 1.0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_metrics_access_modes(make_server: Callable[..., ServerHandle]) -> None:
    guarded = make_server(metrics_access="token")
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(guarded.url)
    assert refused.value.code == 401
    assert ("postback_messages_accepted_total", ()) in scrape(guarded.url, guarded.token)
    closed = make_server(metrics_access="off")
    with pytest.raises(urllib.error.HTTPError) as missing:
        scrape(closed.url, closed.token)
    assert missing.value.code == 404
    with pytest.raises(SettingsError, match="METRICS_ACCESS"):
        make_server(metrics_access="public")


# ---- logs ----------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_json_log_line_per_attempt(
    server: ServerHandle,
    receiver: Receiver,
    restore_logging: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics.setup_logging("json")
    client = server.svix()
    app = client.application.create(ApplicationIn(name="logs"))
    ep = client.endpoint.create(app.id, EndpointIn(url=receiver.route("/ok", ok())))
    msg = client.message.create(app.id, MessageIn(event_type="order.paid", payload={"a": 1}))
    receiver.wait_for(1, "/ok")

    def attempt_lines() -> list[dict]:
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
        found.extend(e for e in lines if e["logger"] == "postback.attempt")
        return found

    found: list[dict] = []
    eventually(lambda: bool(attempt_lines()))
    entry = found[0]
    assert (entry["msg_id"], entry["endpoint_id"], entry["app_id"]) == (msg.id, ep.id, app.id)
    assert (entry["status"], entry["attempt"], entry["level"]) == (200, 1, "info")
    assert entry["duration_ms"] >= 0
    assert f"msg={msg.id} endpoint={ep.id} attempt=1 status=200" in entry["message"]


def test_text_log_format_and_a_bad_format(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics.setup_logging("text")
    logging.getLogger("postback.worker").info("worker started (concurrency %d)", 7)
    assert "INFO postback.worker: worker started (concurrency 7)" in capsys.readouterr().err
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        metrics.setup_logging("xml")
    metrics.setup_logging("json", "warning")
    assert not logging.getLogger("postback.attempt").isEnabledFor(logging.INFO)
    with pytest.raises(SettingsError, match="LOG_LEVEL"):
        metrics.setup_logging("text", "loud")


def test_a_worker_process_serves_its_own_metrics(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ) | {
        "POSTBACK_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "POSTBACK_SECRET_KEY": SECRET_KEY,
        "POSTBACK_WORKER_METRICS_PORT": str(port),
        "POSTBACK_WORKER_CONCURRENCY": "7",
    }
    postback = str(Path(sys.executable).with_name("postback"))
    worker = subprocess.Popen(
        [postback, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:

        def scraped() -> Samples | None:
            try:
                return scrape(f"http://127.0.0.1:{port}")
            except OSError:
                return None

        samples = eventually(scraped)
        assert value(samples, "postback_worker_concurrency") == 7
        assert value(samples, "postback_worker_in_flight") == 0
        assert ("postback_messages_accepted_total", ()) in samples
    finally:
        worker.terminate()
        assert worker.wait(15) == 0


def test_a_batch_of_attempt_lines_is_written_at_once(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics.setup_logging("text")
    handler = logging.getLogger().handlers[0]
    log = logging.getLogger("postback.attempt")
    with handler.batch():  # type: ignore[attr-defined]
        log.info("first")
        log.info("second with 100%")
        assert capsys.readouterr().err == ""  # held until the batch ends
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["first", "second with 100%"]
    log.info("alone")
    assert capsys.readouterr().err.endswith("postback.attempt: alone\n")
