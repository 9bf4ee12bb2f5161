"""Tracing across processes (issue 22): a caller's traceparent on POST /msg/ is the root
parent of the API's request span, the message's ingest and, in a separate worker process
on PostgreSQL, each attempt's claim, HTTP client span and record; all decoded from the
OTLP/HTTP protobuf a test collector received. The receiver is given the client span's
traceparent only when POSTBACK_SEND_TRACEPARENT is on."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from svix.api import ApplicationIn, EndpointIn, Svix, SvixOptions

from tests.conftest import _create_db, _drop_db, _with_database, run_sync
from tests.support.otlp_collector import Collector, Span
from tests.support.procs import Proc, env_for, free_port, wait_healthy
from tests.support.receivers import Receiver, ok

TOKEN = "pb_e2e_tracing_token"
PAYLOAD_MARK = "payload-never-in-a-span"
URL_SECRET = "query-secret-never-in-a-span"


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


@pytest.fixture
def pg_database(pg_admin_url: str) -> Iterator[str]:
    name = f"pb_trace_{secrets.token_hex(5)}"
    run_sync(_create_db(pg_admin_url, name))
    yield _with_database(pg_admin_url, name)
    run_sync(_drop_db(pg_admin_url, name))


def _otel(collector: Collector, **extra: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_SERVICE_NAME": "postback-e2e",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **extra,
    }


def _post(url: str, app_id: str, caller: str | None) -> str:
    headers = {"authorization": f"Bearer {TOKEN}"}
    if caller:
        headers["traceparent"] = caller
    body = {"eventType": "purchase.approved", "payload": {"mark": PAYLOAD_MARK}}
    r = httpx.post(f"{url}/api/v1/app/{app_id}/msg/", json=body, headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _one(spans: list[Span], **where: object) -> Span:
    found = [
        s
        for s in spans
        if all(
            (s.name if k == "name" else s.attributes.get(k) if k != "process" else
             s.resource.get("postback.process")) == v
            for k, v in where.items()
        )
    ]  # fmt: skip
    assert len(found) == 1, (where, [(s.name, s.attributes) for s in spans])
    return found[0]


def test_one_message_traced_from_the_caller_to_its_attempt(
    pg_database: str, tmp_path: Path, collector: Collector
) -> None:
    port = free_port()
    env = env_for(pg_database, POSTBACK_PORT=str(port), POSTBACK_ADMIN_TOKEN=TOKEN)
    url = f"http://127.0.0.1:{port}"
    api = Proc(["api"], env | _otel(collector), tmp_path)
    with Receiver() as hooks:
        try:
            wait_healthy(url, api, timeout=120)
            svix = Svix(TOKEN, SvixOptions(server_url=url, retry_schedule=[], timeout=30))
            app = svix.application.create(ApplicationIn(name="shop"))
            hook = hooks.route("/hook", ok()) + f"?token={URL_SECRET}"
            endpoint = svix.endpoint.create(app.id, EndpointIn(url=hook))
            caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
            caller = f"00-{caller_trace}-{caller_span}-01"
            msg_on = _post(url, app.id, caller)
            # A worker that passes the trace context on to receivers.
            worker = Proc(
                ["worker"], env | _otel(collector, POSTBACK_SEND_TRACEPARENT="true"), tmp_path
            )
            try:
                (first,) = hooks.wait_for(1, "/hook", timeout=90)
            finally:
                assert worker.stop() == 0, worker.output()
            # The default: no traceparent for receivers (the attempt is still traced).
            msg_off = _post(url, app.id, None)
            worker = Proc(["worker"], env | _otel(collector), tmp_path)
            try:
                second = hooks.wait_for(2, "/hook", timeout=90)[1]
            finally:
                assert worker.stop() == 0, worker.output()
        finally:
            assert api.stop() == 0, api.output()

    # Each process flushed its spans when it stopped.
    spans = collector.wait_for(
        lambda got: sum(s.name == "postback.attempt" for s in got) >= 2, timeout=30
    )
    assert {s.resource["service.name"] for s in spans} == {"postback-e2e"}
    traced = [s for s in spans if s.trace_id == caller_trace]

    # The API process: the request's span under the caller's, the ingest under it.
    request = _one(traced, name="POST /api/v1/app/{app_id}/msg/", process="api")
    assert request.parent_id == caller_span
    assert request.proto.kind == request.proto.SPAN_KIND_SERVER
    assert request.attributes["http.response.status_code"] == 202
    assert request.proto.flags & 0x300 == 0x300  # its parent is remote
    ingest = _one(traced, name="postback.ingest")
    assert ingest.parent_id == request.span_id
    assert ingest.attributes["postback.message.id"] == msg_on
    assert ingest.attributes["postback.app.id"] == app.id
    assert ingest.resource["postback.process"] == "api"

    # The worker process: the attempt under the message's ingest, its three steps under it.
    attempt = _one(traced, name="postback.attempt", process="worker")
    assert attempt.parent_id == ingest.span_id
    assert attempt.attributes["postback.message.id"] == msg_on
    assert attempt.attributes["postback.endpoint.id"] == endpoint.id
    assert attempt.attributes["postback.attempt.number"] == 1
    children = sorted(
        (s for s in traced if s.parent_id == attempt.span_id),
        key=lambda s: s.proto.start_time_unix_nano,
    )
    assert [s.name for s in children] == ["postback.claim", "POST", "postback.record"]
    claim, send, record = children
    assert send.proto.kind == send.proto.SPAN_KIND_CLIENT
    assert send.attributes == {
        "http.request.method": "POST",
        "postback.endpoint.id": endpoint.id,
        "server.address": "127.0.0.1",
        "server.port": int(hooks.url.rsplit(":", 1)[1]),
        "http.response.status_code": 200,
    }
    start, end = attempt.proto.start_time_unix_nano, attempt.proto.end_time_unix_nano
    assert start <= claim.proto.end_time_unix_nano <= send.proto.start_time_unix_nano
    assert send.proto.end_time_unix_nano <= record.proto.start_time_unix_nano
    assert record.proto.end_time_unix_nano == end
    assert send.proto.end_time_unix_nano - send.proto.start_time_unix_nano > 0
    # Trace context for the receiver: the client span's, sampled.
    assert first.headers["traceparent"] == f"00-{caller_trace}-{send.span_id}-01"
    assert "traceparent" not in second.headers

    # The second message had no caller context: a trace of its own, ingest to attempt.
    own = _one(spans, name="postback.ingest", **{"postback.message.id": msg_off})
    assert own.trace_id != caller_trace
    assert _one(spans, name="postback.attempt", **{"postback.message.id": msg_off}).parent_id == (
        own.span_id
    )
    # Never the payload, the URL's query or secrets.
    for body in collector.bodies:
        assert PAYLOAD_MARK.encode() not in body
        assert URL_SECRET.encode() not in body
        assert b"whsec_" not in body and TOKEN.encode() not in body


def test_serve_on_sqlite_traces_the_same_tree(tmp_path: Path, collector: Collector) -> None:
    port = free_port()
    env = env_for("sqlite:///./postback.db", POSTBACK_PORT=str(port), POSTBACK_ADMIN_TOKEN=TOKEN)
    env |= _otel(collector, POSTBACK_SEND_TRACEPARENT="true")
    url = f"http://127.0.0.1:{port}"
    serve = Proc(["serve"], env, tmp_path)
    with Receiver() as hooks:
        try:
            wait_healthy(url, serve, timeout=120)
            svix = Svix(TOKEN, SvixOptions(server_url=url, retry_schedule=[], timeout=30))
            app = svix.application.create(ApplicationIn(name="shop"))
            svix.endpoint.create(app.id, EndpointIn(url=hooks.route("/hook", ok())))
            caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
            msg_id = _post(url, app.id, f"00-{caller_trace}-{caller_span}-01")
            (got,) = hooks.wait_for(1, "/hook", timeout=90)
        finally:
            assert serve.stop() == 0, serve.output()
    spans = collector.wait_for(lambda got: any(s.name == "postback.record" for s in got))
    traced = [s for s in spans if s.trace_id == caller_trace]
    assert {s.resource["postback.process"] for s in traced} == {"serve"}
    request = _one(traced, name="POST /api/v1/app/{app_id}/msg/")
    ingest = _one(traced, name="postback.ingest")
    attempt = _one(traced, name="postback.attempt")
    send = _one(traced, name="POST")
    assert request.parent_id == caller_span and ingest.parent_id == request.span_id
    assert attempt.parent_id == ingest.span_id
    assert attempt.attributes["postback.message.id"] == msg_id
    assert send.parent_id == attempt.span_id
    assert got.headers["traceparent"] == f"00-{caller_trace}-{send.span_id}-01"
