"""OpenTelemetry tracing: a span per API request, per message its ingest, per attempt
claim -> send -> record, exported as OTLP/HTTP (postback.otlp).

Off unless the standard variables ask for it (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or ``OTEL_TRACES_EXPORTER=otlp``; never with
``OTEL_SDK_DISABLED=true``). Off, the SDK is never imported, no middleware is installed and
the worker makes no span objects: the hot paths test one module attribute.

The API side uses the SDK's tracer (so other instrumentation nests in its spans); the
worker writes its attempts' spans itself (AttemptSpans, one object per attempt for its four
spans), because the SDK's span objects alone cost more than a delivery's share of the
worker at four spans per attempt. Both go through the SDK's BatchSpanProcessor
(``OTEL_BSP_*``) to one exporter; sampling follows ``OTEL_TRACES_SAMPLER`` / ``_ARG``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from postback import __version__

if TYPE_CHECKING:
    from postback.delivery.attempt_spans import AttemptTracer

# Set by setup() when tracing is on; None means off (every hook checks this first).
tracer: Any = None
_provider: Any = None
_processor: Any = None
_exporter: Any = None
_sampler: tuple[str, int] = ("parent", 1 << 64)

TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


class MissingSDK(RuntimeError):
    """Tracing is asked for, but opentelemetry-sdk (the ``otel`` extra) is missing."""


def configured(env: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables ask for traces."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")}
    exporters.discard("")
    if exporters and "otlp" not in exporters:  # "none", or exporters postback does not have
        return False
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    return bool(endpoint or exporters)


def setup(process: str) -> bool:
    """Start tracing for this process (``serve``, ``api`` or ``worker``) if configured.
    Raises otlp.ExportError for variables it cannot follow, MissingSDK without the SDK."""
    global tracer, _provider, _processor, _exporter, _sampler
    if _provider is not None or not configured():
        return _provider is not None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider, sampling
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise MissingSDK(
            f"OTEL_* variables ask for traces but the OpenTelemetry SDK is not installed "
            f"({exc.name}): pip install 'postback[otel]'; running without tracing"
        ) from None

    from postback.otlp import OtlpHttpExporter

    resource = Resource.create({"service.version": __version__, "postback.process": process})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "postback"}))
    exporter = _exporter = OtlpHttpExporter.from_env(dict(resource.attributes), __version__)
    provider = TracerProvider(resource=resource)  # its sampler: OTEL_TRACES_SAMPLER/_ARG
    _processor = BatchSpanProcessor(exporter)  # type: ignore[arg-type]
    provider.add_span_processor(_processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    tracer = provider.get_tracer("postback", __version__)
    _sampler = _worker_sampler(sampling)
    return True


def shutdown() -> None:
    """Export what is queued and stop (the batch processor's thread flushes first)."""
    global tracer, _provider, _processor, _exporter
    if _provider is not None:
        _processor.force_flush(5000)  # what is queued, retries included
        _exporter.shutdown()  # then no more waiting for a collector that does not answer
        _provider.shutdown()
    tracer = _provider = _processor = _exporter = None


def _worker_sampler(sampling: Any) -> tuple[str, int]:
    """The configured sampler as (rule, bound), so the worker decides per attempt without
    the SDK's objects (asking the SDK costs more per attempt than the rest of tracing's
    hooks: docs/performance.md).
    "parent": the stored context's sampled flag decides, and a root is sampled if its
    trace id's low 64 bits are below the bound (the SDK's TraceIdRatioBased rule);
    "ratio": the bound alone; "sdk": a sampler other than the built-in ones, asked."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    rule = "parent" if name.startswith("parentbased_") else "ratio"
    root = name.removeprefix("parentbased_")
    if root == "always_on":
        return rule, 1 << 64
    if root == "always_off":
        return rule, 0
    if root == "traceidratio":
        try:
            rate = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
        except ValueError:
            rate = 1.0  # as the SDK does
        return rule, sampling.TraceIdRatioBased(min(max(rate, 0.0), 1.0)).bound
    return "sdk", 0


# ---- trace context as text -----------------------------------------------------------------


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a W3C traceparent, or None if it is not a valid one
    (a later version's header is read by its first four fields, as W3C says)."""
    if not value or len(value) < 55:
        return None
    found = TRACEPARENT.fullmatch(value, 0, 55)
    if not found or found[1] == "ff":
        return None
    if len(value) > 55 and (found[1] == "00" or value[55] != "-"):
        return None
    trace_id, span_id = int(found[2], 16), int(found[3], 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(found[4], 16)


def traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & 0xFF:02x}"


# ---- the API side ----------------------------------------------------------------------------


class RequestSpans:
    """ASGI middleware: a SERVER span per HTTP request, child of the caller's traceparent.
    Installed only when tracing is on."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or tracer is None:
            await self.app(scope, receive, send)
            return
        from opentelemetry import context, propagate, trace

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        parent = propagate.extract(carrier)
        method = scope["method"]
        span = tracer.start_span(
            method,
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )
        token = context.attach(trace.set_span_in_context(span, parent))
        code = 0

        async def sending(message: Any) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # its type only: an error's message may quote input
            span.set_attribute("error.type", type(exc).__qualname__)
            code = code or 500
            raise
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            if code:
                span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            span.end()
            context.detach(token)


def fastapi_options() -> dict[str, Any]:
    """FastAPI's arguments: FastAPI versions with OpenTelemetry of their own would trace
    each request a second time (and its dependencies, endpoint and serialization) once a
    tracer provider is set; RequestSpans is the one request span, in every version."""
    import inspect

    from fastapi import FastAPI

    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False}}
    return {}


@contextmanager
def _ingest_span(event_type: str) -> Iterator[Any]:
    from opentelemetry import trace

    # Not the SDK's exception event or status text: an error's message may quote input.
    with tracer.start_as_current_span(
        "postback.ingest",
        attributes={"postback.event_type": event_type},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(trace.Status(trace.StatusCode.ERROR))
            raise


def ingest(event_type: str) -> Any:
    """A span around accepting one message (a no-op when off): ``with ingest(...) as span``."""
    if tracer is None:
        return nullcontext(None)
    return _ingest_span(event_type)


def stored_context(span: Any, caller: str | None) -> str | None:
    """What the message keeps for its attempts: the ingest span's traceparent; with
    tracing off, the caller's own traceparent (if it is one), so a tracing worker still
    joins the caller's trace and receivers can be given it."""
    if span is None:
        found = parse_traceparent(caller)
        return traceparent(*found) if found else None
    ctx = span.get_span_context()
    return traceparent(ctx.trace_id, ctx.span_id, int(ctx.trace_flags))


def annotate_ingest(span: Any, row: Mapping[str, Any], created: bool) -> None:
    if span is not None:
        span.set_attribute("postback.message.id", row["id"])
        span.set_attribute("postback.app.id", row["app_id"])
        span.set_attribute("postback.message.new", created)


def attempt_tracer() -> AttemptTracer | None:
    """The worker's hooks (postback.delivery.attempt_spans), or None when tracing is off."""
    if tracer is None:
        return None
    from postback.delivery.attempt_spans import AttemptTracer

    return AttemptTracer(_processor, _sampler)


def sampled_by_sdk(trace_id: int, parent: tuple[int, int, int] | None) -> bool:
    """For a sampler postback does not know: the SDK decides (slower, but exact)."""
    from opentelemetry import trace

    ctx = None
    if parent is not None:
        remote = trace.SpanContext(parent[0], parent[1], True, trace.TraceFlags(parent[2]))
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    decision = _provider.sampler.should_sample(ctx, trace_id, "postback.attempt")
    return bool(decision.decision.is_sampled())
