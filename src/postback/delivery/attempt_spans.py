"""The worker's spans: per attempt postback.attempt (claim to record) and under it
postback.claim, POST (the HTTP client span) and postback.record.

Loaded only when tracing is on (postback.tracing.attempt_tracer). An attempt's spans are
one AttemptSpans object, filled in as the attempt goes and written as OTLP in the
exporter's thread (postback.otlp), from fragments encoded once per process, endpoint or
batch: the SDK's span objects cost more per span than this costs per attempt. Never the
payload, headers or the URL's path, query or credentials: the endpoint's id and the URL's
host and port.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from postback import otlp, tracing

if TYPE_CHECKING:
    from postback.domain import AttemptResult, ClaimedDelivery

K = TypeVar("K")
_pack = struct.Struct("<Q").pack
_rand = random.randbytes


def _head(name: str, kind: int) -> bytes:
    """A span's name (field 5) and kind (6: 1 internal, 3 client)."""
    return otlp.text(0x2A, name) + b"\x30" + bytes((kind,))


def _attr(key: str, value: Any) -> bytes:
    """A span attribute (field 9)."""
    return otlp.key_value(0x4A, key, value)


def _cached(cache: dict[K, bytes], key: K, make: Callable[[], bytes]) -> bytes:
    found = cache.get(key)
    if found is None:
        if len(cache) > 10_000:
            cache.clear()
        found = cache[key] = make()
    return found


_ATTEMPT = _head("postback.attempt", 1)
_CLAIM = _head("postback.claim", 1)
_RECORD = _head("postback.record", 1)
_SEND = _head("POST", 3) + _attr("http.request.method", "POST")
_TRIGGERS = {0: _attr("postback.attempt.trigger", "scheduled")}
_TRIGGERS[1] = _attr("postback.attempt.trigger", "manual")
_ERROR = otlp.status(2)
_CHILD = otlp.span_flags(1, False)  # sampled; the parent (the attempt) is local
_UNDER_REMOTE = otlp.span_flags(1, True)  # under the message's context, from elsewhere
_ROOT = otlp.span_flags(1, False)  # no parent: none remote
_ints: dict[tuple[str, int], bytes] = {}
_strs: dict[tuple[str, str], bytes] = {}
_endpoints: dict[tuple[str, str], tuple[bytes, bytes]] = {}


def _int(key: str, value: int) -> bytes:
    return _cached(_ints, (key, value), lambda: _attr(key, value))


def _str(key: str, value: str) -> bytes:
    return _cached(_strs, (key, value), lambda: _attr(key, value))


def _endpoint(endpoint_id: str, url: str) -> tuple[bytes, bytes]:
    """postback.endpoint.id, and for the client span also server.address and server.port
    (the URL's host and port, nothing else of it)."""
    found = _endpoints.get((endpoint_id, url))
    if found is None:
        if len(_endpoints) > 10_000:
            _endpoints.clear()
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            host, port = "", 0
        ep = _attr("postback.endpoint.id", endpoint_id)
        where = _attr("server.address", host) + _attr("server.port", port)
        found = _endpoints[endpoint_id, url] = (ep, ep + where)
    return found


class Window:
    """A claim's or a record's batch: its times as span fields, and its size."""

    __slots__ = ("end", "size", "start", "times")

    def __init__(self, start: int, end: int, size: int) -> None:
        self.start, self.end = _pack(start), _pack(end)
        self.times = b"\x39" + self.start + b"\x41" + self.end
        self.size = _int("postback.batch.size", size)


def _tagged(span: bytes) -> bytes:
    """A span as ScopeSpans' field 2."""
    return b"\x12" + otlp.varint(len(span)) + span


class AttemptSpans:
    """One attempt's four spans, filled in as it goes; ``otlp_spans`` writes them once it
    is recorded (an attempt is made into spans only if it is sampled)."""

    __slots__ = (
        "attempt_id",
        "claim",
        "delivery",
        "parent_id",
        "record",
        "result",
        "send_end",
        "send_id",
        "send_start",
        "trace_id",
    )

    def __init__(
        self, delivery: ClaimedDelivery, trace_id: bytes, parent_id: bytes, claim: Window
    ) -> None:
        self.delivery = delivery
        self.trace_id, self.parent_id = trace_id, parent_id  # 16 and 8 (or 0) bytes
        self.attempt_id, self.send_id = _rand(8), _rand(8)
        self.claim = claim
        self.record: Window | None = None
        self.send_start = self.send_end = 0
        self.result: AttemptResult | None = None

    def traceparent(self) -> str:
        """What the receiver is given: this attempt's HTTP client span, sampled."""
        return f"00-{self.trace_id.hex()}-{self.send_id.hex()}-01"

    def otlp_spans(self) -> bytes:
        d, res, claim, record = self.delivery, self.result, self.claim, self.record
        assert record is not None and res is not None
        tid = b"\x0a\x10" + self.trace_id
        under = b"\x22\x08" + self.attempt_id
        ep, ep_where = _endpoint(d.endpoint_id, d.url)
        code = res.status_code
        failed = not res.ok
        outcome = _int("http.response.status_code", code) if code else b""
        if failed:
            why = str(code) if code else "no_response"
            outcome += _str("error.type", why) + _ERROR
        if self.parent_id:
            parent, flags = b"\x22\x08" + self.parent_id, _UNDER_REMOTE
        else:
            parent, flags = b"", _ROOT
        attempt = (
            tid, b"\x12\x08", self.attempt_id, parent, _ATTEMPT, b"\x39", claim.start,
            b"\x41", record.end, otlp.key_value(0x4A, "postback.message.id", d.msg_id),
            _str("postback.app.id", d.app_id), ep,
            _int("postback.attempt.number", d.attempt_count + 1),
            _TRIGGERS.get(int(d.trigger), b""), _ERROR if failed else b"", flags,
        )  # fmt: skip
        send = (
            tid, b"\x12\x08", self.send_id, under, _SEND, b"\x39", _pack(self.send_start),
            b"\x41", _pack(self.send_end), ep_where, outcome, _CHILD,
        )  # fmt: skip
        return b"".join(
            (
                _tagged(b"".join(attempt)),
                _tagged(
                    b"".join((tid, b"\x12\x08", _rand(8), under, _CLAIM, claim.times, claim.size,
                              _CHILD))
                ),
                _tagged(b"".join(send)),
                _tagged(
                    b"".join((tid, b"\x12\x08", _rand(8), under, _RECORD, record.times,
                              record.size, _CHILD))
                ),
            )
        )  # fmt: skip


class Written:
    """An attempt's spans, already written as OTLP. They are written in the event loop's
    thread, when the attempt is recorded: the exporter's thread then only joins bytes and
    POSTs them, holding the GIL for moments. (Writing them there instead slowed a traced
    worker on a busy machine far more than the CPU it added: the loop waited for the GIL
    while the OS had the exporter's thread, holding it, off the core. Figures:
    docs/performance.md.)"""

    __slots__ = ("data",)
    context: Any = None  # a sampled SpanContext, set by AttemptTracer

    def __init__(self, data: bytes) -> None:
        self.data = data

    def otlp_spans(self) -> bytes:
        return self.data


def _stored(context: str | None) -> tuple[bytes, bytes, int] | None:
    """(trace id, span id, flags) of a message's stored traceparent (written by
    postback.tracing.stored_context: version 00, 55 characters)."""
    if context is None or len(context) != 55:
        return None
    try:
        return bytes.fromhex(context[3:35]), bytes.fromhex(context[36:52]), int(context[53:], 16)
    except ValueError:
        return None


class AttemptTracer:
    """The worker's hooks: claimed -> traceparent/sent -> recorded. Holds each sampled
    claim's spans until its attempt is recorded (or forgotten, when handed back)."""

    def __init__(self, processor: Any, sampler: tuple[str, int]) -> None:
        from opentelemetry import trace

        Written.context = trace.SpanContext(1, 1, False, trace.TraceFlags(1))
        self.processor = processor
        self.rule, self.bound = sampler
        self.open: dict[str, AttemptSpans] = {}

    def _sampled(self, trace_id: bytes, parent: tuple[bytes, bytes, int] | None) -> bool:
        if self.rule == "parent" and parent is not None:
            return bool(parent[2] & 1)
        if self.rule == "sdk":
            ints = (int.from_bytes(parent[0]), int.from_bytes(parent[1]), parent[2])
            return tracing.sampled_by_sdk(int.from_bytes(trace_id), ints if parent else None)
        # The SDK's TraceIdRatioBased rule: the trace id's low 64 bits below the bound.
        return int.from_bytes(trace_id[8:]) < self.bound

    def claimed(self, claims: list[ClaimedDelivery], started: int) -> None:
        window = Window(started, time.time_ns(), len(claims))
        for claim in claims:
            parent = _stored(claim.trace_context)
            trace_id = parent[0] if parent else _rand(16)
            if self._sampled(trace_id, parent):
                parent_id = parent[1] if parent else b""
                self.open[claim.delivery_id] = AttemptSpans(claim, trace_id, parent_id, window)

    def traceparent(self, claim: ClaimedDelivery) -> str | None:
        """The header for the receiver: the client span's, else (not sampled) the
        message's own context, passed on as it came."""
        spans = self.open.get(claim.delivery_id)
        return spans.traceparent() if spans is not None else claim.trace_context

    def sent(self, claim: ClaimedDelivery, started: int) -> None:
        spans = self.open.get(claim.delivery_id)
        if spans is not None:
            spans.send_start, spans.send_end = started, time.time_ns()

    def recorded(self, results: list[AttemptResult], started: int) -> None:
        window: Window | None = None
        on_end, pop = self.processor.on_end, self.open.pop
        for result in results:
            spans = pop(result.delivery.delivery_id, None)
            if spans is not None:
                window = window or Window(started, time.time_ns(), len(results))
                spans.result, spans.record = result, window
                on_end(Written(spans.otlp_spans()))

    def forget(self, claims: Any) -> None:
        for claim in claims:
            self.open.pop(claim.delivery_id, None)
