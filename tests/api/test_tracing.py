"""Tracing's parts (issue 22): when it is on, the W3C trace context, the OTLP protobuf we
write (decoded by the official opentelemetry-proto classes), the exporter's variables, the
worker's attempt spans and sampling, and the trace context the store keeps per message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from postback import otlp, tracing
from postback.delivery.attempt_spans import AttemptTracer
from postback.domain import AttemptResult, TriggerType, utcnow
from postback.signing import generate_secret
from postback.store.store import Store
from tests.support.otlp_collector import Collector

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_tracing_is_on_only_when_the_otel_variables_ask() -> None:
    assert not tracing.configured({})
    assert not tracing.configured({"OTEL_SERVICE_NAME": "shop"})  # where to? nowhere
    assert tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/v1/traces"})
    assert tracing.configured({"OTEL_TRACES_EXPORTER": "otlp"})  # the default endpoint
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert not tracing.configured(endpoint | {"OTEL_SDK_DISABLED": "true"})
    assert not tracing.configured(endpoint | {"OTEL_TRACES_EXPORTER": "none"})


PROBE = """
import asyncio, json, sys
from postback import tracing
from postback.api.app import create_app
from postback.config import Settings
from postback.delivery.worker import Worker
from postback.store.store import Store

settings = Settings(database_url=sys.argv[1])
on = tracing.setup("serve")
app = create_app(settings)

async def worker_tracer():
    store = Store.connect(settings.database_url)
    try:
        return Worker(store, settings).tracer
    finally:
        await store.close()

from opentelemetry import trace
print(json.dumps({
    "on": on,
    "provider": type(trace.get_tracer_provider()).__name__,
    "middleware": [m.cls.__name__ for m in app.user_middleware],
    "worker": type(asyncio.run(worker_tracer())).__name__,
    "sdk_loaded": "opentelemetry.sdk" in sys.modules,
}))
tracing.shutdown()
"""


def _probe(tmp_path: Any, **otel: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "POSTBACK_"))}
    url = f"sqlite:///{tmp_path / 'probe.db'}"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url], env=env | otel, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_otel_variables_no_tracer_provider_is_set_up(tmp_path: Any) -> None:
    off = _probe(tmp_path)
    assert off == {
        "on": False,
        "provider": "ProxyTracerProvider",  # the API's placeholder: no SDK behind it
        "middleware": ["BodyLimit", "Idempotency"],
        "worker": "NoneType",
        "sdk_loaded": False,
    }
    # The same process with the variables: the SDK's provider, the request spans, the
    # worker's attempt tracer.
    on = _probe(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert on == {
        "on": True,
        "provider": "TracerProvider",
        "middleware": ["RequestSpans", "BodyLimit", "Idempotency"],
        "worker": "AttemptTracer",
        "sdk_loaded": True,
    }


def test_traceparent_is_read_as_w3c_writes_it() -> None:
    trace_id, span_id = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331
    assert tracing.parse_traceparent(CALLER) == (trace_id, span_id, 1)
    assert tracing.traceparent(trace_id, span_id, 1) == CALLER
    # A later version is read by its first fields; version 00 has exactly four.
    assert tracing.parse_traceparent("01" + CALLER[2:] + "-what-comes-next") == (
        trace_id,
        span_id,
        1,
    )
    for bad in (
        None,
        "",
        CALLER.upper(),  # W3C: lowercase only
        "ff" + CALLER[2:],  # version ff is invalid
        CALLER + "-extra",  # version 00 has nothing after the flags
        "00-" + "0" * 32 + "-b7ad6b7169203331-01",  # all-zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01",  # all-zero span id
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",  # short
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033zz-01",
    ):
        assert tracing.parse_traceparent(bad) is None, bad
    # What a message keeps when tracing is off in the API: the caller's, normalised.
    assert tracing.stored_context(None, "01" + CALLER[2:] + "-x") == CALLER
    assert tracing.stored_context(None, "garbage") is None
    assert tracing.stored_context(None, None) is None


def _sdk_spans() -> list[Any]:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("postback", "9.9")
    other = provider.get_tracer("someone.else")
    with tracer.start_as_current_span("outer", kind=trace.SpanKind.SERVER) as outer:
        outer.set_attributes(
            {"s": "ü", "b": True, "i": -7, "big": 2**62, "f": 0.5, "list": ["a", "b"]}
        )
        outer.add_event("happened", {"n": 3})
        with other.start_as_current_span("inner") as inner:
            inner.set_status(trace.Status(trace.StatusCode.ERROR, "it broke"))
        link = trace.Link(outer.get_span_context(), {"why": "because"})
        tracer.start_span("linked", links=[link]).end()
    return list(memory.get_finished_spans())


def test_sdk_spans_decode_with_the_official_protobuf_classes() -> None:
    spans = _sdk_spans()
    exporter = otlp.OtlpHttpExporter(
        {"service.name": "shop", "n": 1}, endpoint="http://x", scope_version="9.9"
    )
    request = ExportTraceServiceRequest.FromString(exporter.encode(spans))
    (rs,) = request.resource_spans
    assert {
        kv.key: kv.value.string_value or kv.value.int_value for kv in rs.resource.attributes
    } == {
        "service.name": "shop",
        "n": 1,
    }
    by_scope = {ss.scope.name: ss for ss in rs.scope_spans}
    assert by_scope["postback"].scope.version == "9.9"
    got = {s.name: s for ss in rs.scope_spans for s in ss.spans}
    assert set(got) == {"outer", "inner", "linked"}
    assert [s.name for s in by_scope["someone.else"].spans] == ["inner"]
    sdk = {s.name: s for s in spans}
    outer, inner, linked = got["outer"], got["inner"], got["linked"]
    assert outer.trace_id == sdk["outer"].context.trace_id.to_bytes(16, "big")
    assert outer.span_id == sdk["outer"].context.span_id.to_bytes(8, "big")
    assert outer.parent_span_id == b""
    assert inner.parent_span_id == outer.span_id and inner.trace_id == outer.trace_id
    assert outer.kind == outer.SPAN_KIND_SERVER and inner.kind == inner.SPAN_KIND_INTERNAL
    assert outer.start_time_unix_nano == sdk["outer"].start_time
    assert outer.end_time_unix_nano == sdk["outer"].end_time
    attrs = {kv.key: kv.value for kv in outer.attributes}
    assert attrs["s"].string_value == "ü" and attrs["b"].bool_value is True
    assert attrs["i"].int_value == -7 and attrs["big"].int_value == 2**62
    assert attrs["f"].double_value == 0.5
    assert [v.string_value for v in attrs["list"].array_value.values] == ["a", "b"]
    (event,) = outer.events
    assert event.name == "happened" and event.attributes[0].value.int_value == 3
    assert inner.status.code == inner.status.STATUS_CODE_ERROR
    assert inner.status.message == "it broke"
    # The W3C flags (sampled, random trace id), and whether the parent is remote: known, no.
    assert outer.flags == 0x100 | int(sdk["outer"].context.trace_flags) == 0x103
    assert inner.flags == 0x103
    (link,) = linked.links
    assert link.span_id == outer.span_id and link.attributes[0].value.string_value == "because"


def test_exporter_follows_the_otlp_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    with Collector() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # loses
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.endpoint + "/v1/traces")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=a%20b,other=1")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5000")
        exporter = otlp.OtlpHttpExporter.from_env({"service.name": "shop"}, "1")
        assert exporter.timeout == 5.0
        collector.status = lambda nth: 503 if nth == 0 else 200  # retried once
        result = exporter.export(_sdk_spans())
        assert result.name == "SUCCESS" and exporter.exported == 3
        refused, second = collector.requests
        assert refused["x-api-key"] == "a b"
        assert second["x-api-key"] == "a b" and second["other"] == "1"
        assert second["content-encoding"] == "gzip"
        assert second["content-type"] == "application/x-protobuf"
        assert sorted(s.name for s in collector.spans) == ["inner", "linked", "outer"]
        # A collector that keeps refusing: the batch is given up, not retried forever.
        collector.status = lambda nth: 400
        assert exporter.export(_sdk_spans()).name == "FAILURE"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(otlp.ExportError, match="http/protobuf"):
        otlp.OtlpHttpExporter.from_env({}, None)


class Processor:
    def __init__(self) -> None:
        self.ended: list[Any] = []

    def on_end(self, span: Any) -> None:
        assert span.context.trace_flags.sampled  # what the batch processor checks
        self.ended.append(span)


def _claim(n: int, context: str | None, url: str = "https://u:pw@hooks.shop:8443/h?k=v") -> Any:
    from postback.domain import ClaimedDelivery

    return ClaimedDelivery(
        f"dlv_{n}", "lease", f"msg_{n}", "app_1", "ep_1", url, (b"k",), {}, b"{}", 2,
        TriggerType.MANUAL, trace_context=context,
    )  # fmt: skip


def _decoded(processor: Processor) -> list[Any]:
    exporter = otlp.OtlpHttpExporter({}, endpoint="http://x")
    request = ExportTraceServiceRequest.FromString(exporter.encode(processor.ended))
    return list(request.resource_spans[0].scope_spans[0].spans)


def test_attempt_spans_of_a_failed_attempt_without_a_caller() -> None:
    processor = Processor()
    tracer = AttemptTracer(processor, ("parent", 1 << 64))
    claims = [_claim(1, None), _claim(2, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]
    tracer.claimed(claims, 1)
    # Not sampled upstream: no spans, and the receiver would get the context as it came.
    assert list(tracer.open) == ["dlv_1"]
    assert tracer.traceparent(claims[1]) == claims[1].trace_context
    header = tracer.traceparent(claims[0])
    tracer.sent(claims[0], 5)
    tracer.recorded(
        [
            AttemptResult(claims[0], utcnow(), 0, "", 15000, error="timed out"),
            AttemptResult(claims[1], utcnow(), 200, "", 3),
        ],
        7,
    )
    assert tracer.open == {}
    attempt, claim, send, record = _decoded(processor)
    assert attempt.parent_span_id == b""  # a trace of its own
    assert attempt.flags == 0x101
    assert {kv.key for kv in attempt.attributes} >= {"postback.message.id", "postback.endpoint.id"}
    attrs = {kv.key: kv.value for kv in attempt.attributes}
    assert attrs["postback.attempt.number"].int_value == 3
    assert attrs["postback.attempt.trigger"].string_value == "manual"
    assert attempt.status.code == attempt.status.STATUS_CODE_ERROR
    assert header == f"00-{attempt.trace_id.hex()}-{send.span_id.hex()}-01"
    sent = {kv.key: kv.value for kv in send.attributes}
    assert sent["server.address"].string_value == "hooks.shop"
    assert sent["server.port"].int_value == 8443
    assert sent["error.type"].string_value == "no_response"
    assert "http.response.status_code" not in sent
    assert send.status.code == send.status.STATUS_CODE_ERROR
    assert (send.start_time_unix_nano, claim.start_time_unix_nano) == (5, 1)
    assert record.start_time_unix_nano == 7 and attempt.end_time_unix_nano > 7
    raw = otlp.OtlpHttpExporter({}, endpoint="http://x").encode(processor.ended)
    assert b"pw" not in raw and b"/h" not in raw and b"k=v" not in raw


def test_an_answer_that_is_not_2xx_is_an_error_with_its_code() -> None:
    processor = Processor()
    tracer = AttemptTracer(processor, ("parent", 1 << 64))
    (claim,) = claims = [_claim(1, CALLER, "http://hooks.shop/h")]
    tracer.claimed(claims, 1)
    tracer.sent(claim, 2)
    tracer.recorded([AttemptResult(claim, utcnow(), 503, "busy", 4)], 3)
    attempt, _, send, _ = _decoded(processor)
    assert attempt.parent_span_id.hex() == "b7ad6b7169203331"
    assert attempt.flags == 0x301  # its parent is remote: the message's context
    sent = {kv.key: kv.value for kv in send.attributes}
    assert sent["http.response.status_code"].int_value == 503
    assert sent["error.type"].string_value == "503"
    assert sent["server.port"].int_value == 80


@pytest.mark.parametrize(
    ("sampler", "arg", "rule"),
    [
        (None, None, ("parent", 1 << 64)),
        ("always_off", None, ("ratio", 0)),
        ("parentbased_always_off", None, ("parent", 0)),
        ("traceidratio", "0", ("ratio", 0)),
        ("parentbased_traceidratio", "0.5", ("parent", 1 << 63)),
        ("parentbased_jaeger_remote", None, ("sdk", 0)),
    ],
)
def test_the_worker_samples_as_the_sdk_would(
    monkeypatch: pytest.MonkeyPatch, sampler: str | None, arg: str | None, rule: Any
) -> None:
    from opentelemetry.sdk.trace import sampling

    for name, value in (("OTEL_TRACES_SAMPLER", sampler), ("OTEL_TRACES_SAMPLER_ARG", arg)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert tracing._worker_sampler(sampling) == rule
    if rule[0] == "sdk":
        return
    # Against the SDK's own sampler, for roots and for sampled / unsampled parents.
    sdk = sampling._get_from_env_or_default()
    processor = Processor()
    tracer = AttemptTracer(processor, rule)
    contexts = [None, CALLER, CALLER[:-2] + "00"] * 20
    claims = [_claim(n, c) for n, c in enumerate(contexts)]
    tracer.claimed(claims, 1)
    for claim in claims:
        spans = tracer.open.get(claim.delivery_id)
        parent = tracing.parse_traceparent(claim.trace_context)
        ctx = None
        if parent:
            remote = trace.SpanContext(parent[0], parent[1], True, trace.TraceFlags(parent[2]))
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        trace_id = int.from_bytes(spans.trace_id) if spans else (parent[0] if parent else 0)
        if spans is None and parent is None:
            continue  # a root not sampled: its random trace id is gone; checked below
        decision = sdk.should_sample(ctx, trace_id, "postback.attempt").decision
        assert decision.is_sampled() == (spans is not None), (claim.trace_context, rule)
    roots = sum(1 for c in claims if c.trace_context is None and c.delivery_id in tracer.open)
    assert roots == (20 if rule[1] == 1 << 64 else 0 if rule[1] == 0 else roots)


async def test_a_message_keeps_its_trace_context_to_its_claim(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    await store.create_endpoint(
        app["id"], {"url": "http://127.0.0.1:9/h", "secret": generate_secret()}
    )
    traced, _ = await store.create_message(
        app["id"], {"event_type": "a", "payload": b"{}", "trace_context": CALLER}
    )
    plain, _ = await store.create_message(app["id"], {"event_type": "a", "payload": b"{}"})
    claims = {c.msg_id: c for c in await store.claim_due_deliveries(10, 60)}
    assert claims[traced["id"]].trace_context == CALLER
    assert claims[plain["id"]].trace_context is None
    assert (await store.get_message(app["id"], traced["id"]))["trace_context"] == CALLER


def test_untraced_server_keeps_and_passes_on_the_callers_context(
    make_server: Any, receiver: Any
) -> None:
    """Tracing off (no OTEL variables), POSTBACK_SEND_TRACEPARENT on: the caller's
    traceparent is kept with the message and given to the receiver as it came."""
    import httpx
    from svix.api import ApplicationIn, EndpointIn

    from tests.support.receivers import ok

    server = make_server(send_traceparent=True)
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="shop"))
    svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/hook", ok())))
    auth = {"authorization": f"Bearer {server.token}"}
    body = {"eventType": "a", "payload": {}}
    url = f"{server.url}/api/v1/app/{app.id}/msg/"
    sent = httpx.post(url, json=body, headers=auth | {"traceparent": CALLER}, timeout=30)
    plain = httpx.post(url, json=body, headers=auth | {"traceparent": "nonsense"}, timeout=30)
    assert sent.status_code == plain.status_code == 202
    got = {r.headers["webhook-id"]: r for r in receiver.wait_for(2, "/hook", timeout=30)}
    assert got[sent.json()["id"]].headers["traceparent"] == CALLER
    assert "traceparent" not in got[plain.json()["id"]].headers
    stored = server.call(lambda s: s.get_message(app.id, sent.json()["id"]))
    assert stored["trace_context"] == CALLER
