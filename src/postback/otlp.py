"""OTLP/HTTP trace export: spans written as OTLP protobuf by hand, POSTed from the SDK's
batch thread.

The SDK's own exporter builds one protobuf object per span, attribute and value: at four
spans per attempt, more than a whole delivery's share of the worker's CPU (measured:
docs/performance.md). Writing the wire format directly costs a small fraction of that, and
the worker's attempt records (postback.tracing.AttemptSpans) write their four spans from
fragments encoded once. The format is OTLP 1.x, ``ExportTraceServiceRequest``
(opentelemetry-proto); the tests decode what this sends with the official classes.

Configuration follows the OTLP exporter specification's variables: the endpoint
(``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as is, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` plus
``/v1/traces``), headers, timeout (milliseconds), gzip compression, a CA certificate and a
client certificate; each ``_TRACES_`` variable wins over its general one.
"""

from __future__ import annotations

import gzip
import logging
import os
import ssl
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

log = logging.getLogger("postback.tracing")

_Q = struct.Struct("<Q")
_D = struct.Struct("<d")
RETRYABLE = frozenset({429, 502, 503, 504})


# ---- protobuf wire format ----------------------------------------------------------------


_SMALL = [bytes((n,)) for n in range(0x80)]


def varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def ld(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (``tag`` is field number << 3 | 2, below 128)."""
    return _SMALL[tag] + varint(len(payload)) + payload


def text(tag: int, value: str) -> bytes:
    return ld(tag, value.encode("utf-8", "replace"))


def fixed64(tag: int, value: int) -> bytes:
    return bytes((tag,)) + _Q.pack(value)


def any_value(value: Any) -> bytes:
    """An AnyValue's fields (string 1, bool 2, int 3, double 4, array 5, bytes 7)."""
    if isinstance(value, str):
        return text(0x0A, value)
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value & 0xFFFFFFFFFFFFFFFF)  # int64: two's complement
    if isinstance(value, float):
        return b"\x21" + _D.pack(value)
    if isinstance(value, bytes):
        return ld(0x3A, value)
    if isinstance(value, Sequence):
        return ld(0x2A, b"".join(ld(0x0A, any_value(v)) for v in value))
    return text(0x0A, str(value))


def key_value(tag: int, key: str, value: Any) -> bytes:
    """A KeyValue field numbered by ``tag`` (key 1, value 2)."""
    return ld(tag, text(0x0A, key) + ld(0x12, any_value(value)))


def attributes(tag: int, attrs: Mapping[str, Any] | None) -> bytes:
    if not attrs:
        return b""
    return b"".join(key_value(tag, k, v) for k, v in attrs.items())


# Span fields: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6,
# start 7 and end 8 (fixed64), attributes 9, events 11, links 13, status 15, flags 16
# (fixed32: tag bytes 0x85 0x01). Flags: the W3C trace flags, and whether the parent is
# remote (256: known, 512: remote).
HAS_IS_REMOTE, IS_REMOTE = 0x100, 0x200


def span_flags(trace_flags: int, parent_remote: bool | None) -> bytes:
    flags = trace_flags & 0xFF
    if parent_remote is not None:
        flags |= HAS_IS_REMOTE | (IS_REMOTE if parent_remote else 0)
    return b"\x85\x01" + struct.pack("<I", flags)


def status(code: int, message: str | None = None) -> bytes:
    """Status (message 2, code 3: 0 unset, 1 ok, 2 error); nothing when unset."""
    if not code:
        return b""
    return ld(0x7A, (text(0x12, message) if message else b"") + b"\x18" + varint(code))


def encode_sdk_span(span: Any) -> bytes:
    """The Span message of an SDK ReadableSpan, without its ScopeSpans field tag."""
    ctx = span.context
    parent = span.parent
    out = [
        b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + ctx.span_id.to_bytes(8, "big"),
    ]
    state = ctx.trace_state.to_header() if ctx.trace_state else ""
    if state:
        out.append(text(0x1A, state))
    if parent is not None and parent.span_id:
        out.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    out.append(text(0x2A, span.name))
    out.append(b"\x30" + varint(span.kind.value + 1))  # SDK's INTERNAL is 0, OTLP's 1
    out.append(fixed64(0x39, span.start_time or 0))
    out.append(fixed64(0x41, span.end_time or 0))
    out.append(attributes(0x4A, span.attributes))
    if span.dropped_attributes:
        out.append(b"\x50" + varint(span.dropped_attributes))
    for event in span.events:
        body = fixed64(0x09, event.timestamp) + text(0x12, event.name)
        out.append(ld(0x5A, body + attributes(0x1A, event.attributes)))
    if span.dropped_events:
        out.append(b"\x60" + varint(span.dropped_events))
    for link in span.links:
        lc = link.context
        body = b"\x0a\x10" + lc.trace_id.to_bytes(16, "big") + b"\x12\x08"
        body += lc.span_id.to_bytes(8, "big") + attributes(0x22, link.attributes)
        out.append(ld(0x6A, body))
    if span.dropped_links:
        out.append(b"\x70" + varint(span.dropped_links))
    out.append(status(span.status.status_code.value, span.status.description))
    out.append(span_flags(int(ctx.trace_flags), bool(parent is not None and parent.is_remote)))
    return b"".join(out)


def scope_spans(name: str, version: str | None, tagged: Sequence[bytes]) -> bytes:
    """A ScopeSpans message: scope (name 1, version 2), then the spans, each already
    tagged as field 2 (``ld(0x12, span)``)."""
    scope = text(0x0A, name) + (text(0x12, version) if version else b"")
    return ld(0x0A, scope) + b"".join(tagged)


def export_request(resource: Mapping[str, Any], scopes: Sequence[bytes]) -> bytes:
    """ExportTraceServiceRequest with one ResourceSpans (resource 1, scope_spans 2)."""
    body = ld(0x0A, attributes(0x0A, resource)) + b"".join(ld(0x12, s) for s in scopes)
    return ld(0x0A, body)


# ---- the exporter ------------------------------------------------------------------------


def _env(name: str) -> str | None:
    """OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name>."""
    value = os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}")
    if value is None:
        value = os.environ.get(f"OTEL_EXPORTER_OTLP_{name}")
    return value.strip() if value is not None else None


def endpoint_from_env() -> str:
    explicit = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if explicit:
        return explicit
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or "http://localhost:4318"
    return base.rstrip("/") + "/v1/traces"


def headers_from_env() -> dict[str, str]:
    """``key=value`` pairs separated by commas, values percent-encoded (the spec's form)."""
    out: dict[str, str] = {}
    for part in (_env("HEADERS") or "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[urllib.parse.unquote(key.strip()).lower()] = urllib.parse.unquote(value.strip())
    return out


class ExportError(ValueError):
    """An OTEL_EXPORTER_OTLP_* variable postback cannot follow."""


class OtlpHttpExporter:
    """A SpanExporter (opentelemetry.sdk.trace.export's interface) for OTLP/HTTP protobuf.

    Takes SDK spans and postback's attempt records (anything with ``otlp_spans()``)."""

    def __init__(
        self,
        resource: Mapping[str, Any],
        *,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        compression: str = "none",
        ssl_context: ssl.SSLContext | None = None,
        scope_version: str | None = None,
    ) -> None:
        self.resource = dict(resource)
        self.endpoint = endpoint
        self.headers = {"content-type": "application/x-protobuf", **(headers or {})}
        if compression == "gzip":
            self.headers["content-encoding"] = "gzip"
        self.compression = compression
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.scope_version = scope_version
        self._stopped = threading.Event()
        self.exported = 0  # spans sent and accepted, for tests and logs

    @classmethod
    def from_env(cls, resource: Mapping[str, Any], scope_version: str | None) -> OtlpHttpExporter:
        protocol = (_env("PROTOCOL") or "http/protobuf").lower()
        if protocol != "http/protobuf":
            raise ExportError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: postback exports http/protobuf only"
            )
        compression = (_env("COMPRESSION") or "none").lower()
        if compression not in {"none", "gzip"}:
            raise ExportError(f"OTEL_EXPORTER_OTLP_COMPRESSION={compression}: none or gzip")
        timeout_ms = _env("TIMEOUT") or "10000"
        try:
            timeout = float(timeout_ms) / 1000  # the spec's unit is the millisecond
        except ValueError:
            raise ExportError(f"OTEL_EXPORTER_OTLP_TIMEOUT={timeout_ms}: milliseconds") from None
        endpoint = endpoint_from_env()
        context = None
        if endpoint.startswith("https:"):
            context = ssl.create_default_context(cafile=_env("CERTIFICATE") or None)
            cert, key = _env("CLIENT_CERTIFICATE"), _env("CLIENT_KEY")
            if cert:
                context.load_cert_chain(cert, key or None)
        return cls(
            resource,
            endpoint=endpoint,
            headers=headers_from_env(),
            timeout=max(timeout, 0.001),
            compression=compression,
            ssl_context=context,
            scope_version=scope_version,
        )

    def encode(self, spans: Sequence[Any]) -> bytes:
        # Each scope's spans as ScopeSpans' field 2, tagged (postback's own records come
        # tagged, several spans each).
        ours: list[bytes] = []
        others: dict[tuple[str, str | None], list[bytes]] = {}
        for span in spans:
            own: Callable[[], bytes] | None = getattr(span, "otlp_spans", None)
            if own is not None:
                ours.append(own())
                continue
            scope = span.instrumentation_scope
            key = (scope.name, scope.version) if scope else ("", None)
            into = ours if key == ("postback", self.scope_version) else others.setdefault(key, [])
            into.append(ld(0x12, encode_sdk_span(span)))
        scopes = [scope_spans(n, v, s) for (n, v), s in others.items()]
        if ours:
            scopes.insert(0, scope_spans("postback", self.scope_version, ours))
        return export_request(self.resource, scopes)

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            body = self.encode(spans)
        except Exception:
            log.exception("encoding %d spans failed; they are dropped", len(spans))
            return SpanExportResult.FAILURE
        if self.compression == "gzip":
            body = gzip.compress(body, compresslevel=6)
        wait = 0.5
        for tries in range(4):
            code = self._post(body)
            if code is not None and 200 <= code < 300:
                self.exported += len(spans)
                return SpanExportResult.SUCCESS
            if (code is not None and code not in RETRYABLE) or tries == 3:
                break
            # The spec's retryable answers (and no answer): back off, unless stopping.
            if self._stopped.wait(wait):
                break
            wait *= 2
        log.warning("exporting %d spans to %s failed (%s)", len(spans), self.endpoint, code)
        return SpanExportResult.FAILURE

    def _post(self, body: bytes) -> int | None:
        request = urllib.request.Request(self.endpoint, data=body, headers=self.headers)
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self.ssl_context
            ) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, ValueError) as exc:
            log.debug("OTLP export to %s: %s", self.endpoint, exc)
            return None

    def shutdown(self) -> None:
        self._stopped.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
