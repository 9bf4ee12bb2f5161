"""A test OTLP/HTTP trace receiver on 127.0.0.1: decodes each export with the official
protobuf classes (opentelemetry-proto), as a collector would."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class Span:
    """One decoded span with what it came with."""

    resource: dict[str, Any]
    scope: str
    proto: Any  # opentelemetry.proto.trace.v1.trace_pb2.Span

    @property
    def name(self) -> str:
        return self.proto.name

    @property
    def trace_id(self) -> str:
        return self.proto.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.proto.span_id.hex()

    @property
    def parent_id(self) -> str:
        return self.proto.parent_span_id.hex()

    @property
    def attributes(self) -> dict[str, Any]:
        return {kv.key: _value(kv.value) for kv in self.proto.attributes}


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class Collector:
    """``endpoint`` is the base URL (OTEL_EXPORTER_OTLP_ENDPOINT); exports go to
    /v1/traces. ``status`` scripts the answers (default 200)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []  # as received, decompressed
        self.requests: list[dict[str, str]] = []  # their headers
        self.spans: list[Span] = []
        self.status: Callable[[int], int] = lambda n: 200
        self._lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    raw = gzip.decompress(raw)
                with collector._lock:
                    nth = len(collector.requests)
                    collector.requests.append({k.lower(): v for k, v in self.headers.items()})
                code = collector.status(nth)
                if code == 200 and self.path == "/v1/traces":
                    collector._add(raw)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(code if self.path == "/v1/traces" else 404)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _add(self, raw: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(raw)
        found = []
        for rs in request.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                found += [Span(resource, ss.scope.name, s) for s in ss.spans]
        with self._lock:
            self.bodies.append(raw)
            self.spans += found

    def wait_for(self, check: Callable[[list[Span]], bool], timeout: float = 30) -> list[Span]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                spans = list(self.spans)
            if check(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({s.name for s in spans})
                raise AssertionError(f"spans not in within {timeout}s; have {len(spans)}: {names}")
            time.sleep(0.05)

    def __enter__(self) -> Collector:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
