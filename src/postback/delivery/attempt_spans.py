"""The worker's spans: per attempt postback.attempt (claim to record) and under it
postback.claim, POST (the HTTP client span) and postback.record.

Loaded only when tracing is on (postback.tracing.attempt_tracer). An attempt's spans are
one AttemptSpans object, filled in as the attempt goes and written as OTLP in the
exporter's thread from fragments encoded once (postback.otlp): the SDK's span objects cost
more per span than this costs per attempt. Never the payload, headers or the URL's path,
query or credentials: the endpoint's id and the URL's host and port.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from postback import otlp, tracing

if TYPE_CHECKING:
    from postback.domain import AttemptResult, ClaimedDelivery

_Q = otlp._Q


def _head(name: str, kind: int) -> bytes:
    """A span's name (field 5) and kind (6: 1 internal, 3 client)."""
    return otlp.text(0x2A, name) + b"\x30" + bytes((kind,))


def _key(key: str) -> bytes:
    return otlp.text(0x0A, key)


def _attr(key: bytes, value: bytes) -> bytes:
    """A span attribute (field 9) from a pre-encoded key and an encoded AnyValue."""
    return otlp.ld(0x4A, key + otlp.ld(0x12, value))


def _int(key: bytes, value: int) -> bytes:
    return _attr(key, b"\x18" + otlp.varint(value))


def _str(key: bytes, value: str) -> bytes:
    return _attr(key, otlp.text(0x0A, value))


_ATTEMPT = _head("postback.attempt", 1)
_CLAIM = _head("postback.claim", 1)
_RECORD = _head("postback.record", 1)
_SEND = _head("POST", 3) + otlp.key_value(0x4A, "http.request.method", "POST")
_K_MSG, _K_APP = _key("postback.message.id"), _key("postback.app.id")
_K_EP = _key("postback.endpoint.id")
_K_NUMBER, _K_TRIGGER = _key("postback.attempt.number"), _key("postback.attempt.trigger")
_K_HOST, _K_PORT = _key("server.address"), _key("server.port")
_K_CODE, _K_ERROR = _key("http.response.status_code"), _key("error.type")
_K_BATCH = _key("postback.batch.size")
_TRIGGERS = {0: _str(_K_TRIGGER, "scheduled"), 1: _str(_K_TRIGGER, "manual")}
_ERROR = otlp.status(2)
_CHILD_FLAGS = otlp.span_flags(1, False)
_hosts: dict[str, bytes] = {}


def _host(url: str) -> bytes:
    """server.address and server.port of a URL, encoded once per URL."""
    found = _hosts.get(url)
    if found is None:
        if len(_hosts) > 10_000:
            _hosts.clear()
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            host, port = "", 0
        found = _hosts[url] = _str(_K_HOST, host) + _int(_K_PORT, port)
    return found


def _span(
    tid: bytes, sid: int, parent: bytes, head: bytes, start: int, end: int, *rest: bytes
) -> bytes:
    return b"".join(
        (tid, b"\x12\x08", sid.to_bytes(8, "big"), parent, head, b"\x39", _Q.pack(start),
         b"\x41", _Q.pack(end), *rest)
    )  # fmt: skip


class AttemptSpans:
    """One attempt's four spans. The batch processor reads only ``context`` (sampled: an
    attempt is made into spans only if it is)."""

    __slots__ = (
        "attempt_id",
        "claim",
        "delivery",
        "parent_id",
        "record",
        "result",
        "send",
        "send_id",
        "trace_id",
    )
    context: Any = None  # a sampled SpanContext, set by AttemptTracer

    def __init__(
        self,
        delivery: ClaimedDelivery,
        trace_id: int,
        parent_id: int,
        claim: tuple[int, int, int],
    ) -> None:
        self.delivery = delivery
        self.trace_id, self.parent_id = trace_id, parent_id
        self.attempt_id, self.send_id = random.getrandbits(64) or 1, random.getrandbits(64) or 1
        self.claim = claim  # (start ns, end ns, batch size)
        self.send = self.record = (0, 0, 0)
        self.result: AttemptResult | None = None

    def traceparent(self) -> str:
        """What the receiver is given: this attempt's HTTP client span, sampled."""
        return tracing.traceparent(self.trace_id, self.send_id, 1)

    def otlp_spans(self) -> list[bytes]:
        d, res = self.delivery, self.result
        tid = b"\x0a\x10" + self.trace_id.to_bytes(16, "big")
        under = b"\x22\x08" + self.attempt_id.to_bytes(8, "big")
        failed = res is None or not res.ok
        ep = _str(_K_EP, d.endpoint_id)
        send = [ep, _host(d.url)]
        if res is not None and res.status_code:
            send.append(_int(_K_CODE, res.status_code))
        if failed:
            why = str(res.status_code) if res is not None and res.status_code else "no_response"
            send += (_str(_K_ERROR, why), _ERROR)
        send.append(_CHILD_FLAGS)
        if self.parent_id:  # the message's ingest span (or its caller), in another process
            parent = b"\x22\x08" + self.parent_id.to_bytes(8, "big")
            flags = otlp.span_flags(1, True)
        else:
            parent, flags = b"", otlp.span_flags(1, None)
        bits = random.getrandbits
        claim, record = self.claim, self.record
        return [
            _span(
                tid, self.attempt_id, parent, _ATTEMPT, claim[0], record[1],
                _str(_K_MSG, d.msg_id), _str(_K_APP, d.app_id), ep,
                _int(_K_NUMBER, d.attempt_count + 1), _TRIGGERS.get(int(d.trigger), b""),
                _ERROR if failed else b"", flags,
            ),
            _span(
                tid, bits(64) or 1, under, _CLAIM, claim[0], claim[1],
                _int(_K_BATCH, claim[2]), _CHILD_FLAGS,
            ),
            _span(tid, self.send_id, under, _SEND, self.send[0], self.send[1], *send),
            _span(
                tid, bits(64) or 1, under, _RECORD, record[0], record[1],
                _int(_K_BATCH, record[2]), _CHILD_FLAGS,
            ),
        ]  # fmt: skip


class AttemptTracer:
    """The worker's hooks: claimed -> traceparent/sent -> recorded. Holds each sampled
    claim's spans until its attempt is recorded (or forgotten, when handed back)."""

    def __init__(self, processor: Any, sampler: tuple[str, int]) -> None:
        from opentelemetry import trace

        AttemptSpans.context = trace.SpanContext(1, 1, False, trace.TraceFlags(1))
        self.processor = processor
        self.rule, self.bound = sampler
        self.open: dict[str, AttemptSpans] = {}

    def _sampled(self, trace_id: int, parent: tuple[int, int, int] | None) -> bool:
        if self.rule == "parent" and parent is not None:
            return bool(parent[2] & 1)
        if self.rule == "sdk":
            return tracing.sampled_by_sdk(trace_id, parent)
        return (trace_id & 0xFFFFFFFFFFFFFFFF) < self.bound

    def claimed(self, claims: list[ClaimedDelivery], started: int) -> None:
        window = (started, time.time_ns(), len(claims))
        for claim in claims:
            parent = tracing.parse_traceparent(claim.trace_context)
            trace_id = parent[0] if parent else random.getrandbits(128) or 1
            if self._sampled(trace_id, parent):
                parent_id = parent[1] if parent else 0
                self.open[claim.delivery_id] = AttemptSpans(claim, trace_id, parent_id, window)

    def traceparent(self, claim: ClaimedDelivery) -> str | None:
        """The header for the receiver: the client span's, else (not sampled) the
        message's own context, passed on as it came."""
        spans = self.open.get(claim.delivery_id)
        return spans.traceparent() if spans is not None else claim.trace_context

    def sent(self, claim: ClaimedDelivery, started: int) -> None:
        spans = self.open.get(claim.delivery_id)
        if spans is not None:
            spans.send = (started, time.time_ns(), 0)

    def recorded(self, results: list[AttemptResult], started: int) -> None:
        window = (started, time.time_ns(), len(results))
        on_end, pop = self.processor.on_end, self.open.pop
        for result in results:
            spans = pop(result.delivery.delivery_id, None)
            if spans is not None:
                spans.result, spans.record = result, window
                on_end(spans)

    def forget(self, claims: Any) -> None:
        for claim in claims:
            self.open.pop(claim.delivery_id, None)
