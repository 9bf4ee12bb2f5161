"""Prometheus metrics and logging setup.

Counters and the duration histogram live in this process (each API and worker process
reports its own; Prometheus sums them). Figures that describe the database — queue depth,
the oldest due delivery, disabled endpoints, open circuits — are read from it at scrape
time, so any API process reports the whole system's queue.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import weakref
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from postback.config import SettingsError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from postback.config import Settings
    from postback.domain import AttemptResult
    from postback.store.store import Store

__all__ = [
    "CONTENT_TYPE_LATEST",
    "attempts_recorded",
    "circuit_moved",
    "message_accepted",
    "scrape",
]

attempt_log = logging.getLogger("postback.attempt")

MESSAGES_ACCEPTED = Counter(
    "postback_messages_accepted", "Messages accepted by the API (eventId repeats excluded)"
)
_ATTEMPTS = Counter(
    "postback_delivery_attempts",
    "Delivery attempts recorded, by outcome: success (2xx), failure (another HTTP status), "
    "error (no HTTP response: refused, timeout, TLS, blocked address)",
    ["outcome"],
)
# Children made once: a labelled lookup per attempt would allocate on the hot path.
_SUCCESS, _FAILURE, _ERROR = (_ATTEMPTS.labels(o) for o in ("success", "failure", "error"))
_DURATION = Histogram(
    "postback_attempt_duration_seconds",
    "Time from sending a delivery to its answer (or its failure)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)

_TRANSITIONS = Counter(
    "postback_circuit_transitions",
    "Endpoint circuits this process moved, by the state they moved to: open (after too "
    "many failed attempts in a row, or a failed probe) or closed (a delivery succeeded)",
    ["to"],
)
_TO = {to: _TRANSITIONS.labels(to) for to in ("open", "closed")}


class _Slots(Protocol):
    held: int


class _Worker(Protocol):
    settings: Any
    slots: _Slots


_workers: weakref.WeakSet[Any] = weakref.WeakSet()


def track_worker(worker: _Worker) -> None:
    """Count this worker's claims in flight in postback_worker_in_flight."""
    _workers.add(worker)


def _in_flight() -> float:
    return float(sum(w.slots.held for w in list(_workers)))


def _capacity() -> float:
    return float(sum(w.settings.worker_concurrency for w in list(_workers)))


Gauge(
    "postback_worker_in_flight",
    "Deliveries this process's workers hold: being sent, claimed ahead for the next free "
    "sender (up to POSTBACK_WORKER_BATCH_SIZE), or waiting to be recorded",
).set_function(_in_flight)
Gauge(
    "postback_worker_concurrency",
    "Deliveries this process's workers send at once (POSTBACK_WORKER_CONCURRENCY)",
).set_function(_capacity)


def message_accepted() -> None:
    MESSAGES_ACCEPTED.inc()


def circuit_moved(to: str) -> None:
    """Count an endpoint's circuit moving ``to`` "open" or "closed" (the recording
    transaction's own step; a transaction that rolls back and is retried counts twice)."""
    (_TO.get(to) or _TRANSITIONS.labels(to)).inc()


def attempts_recorded(batch: Sequence[AttemptResult]) -> None:
    """Count, time and log attempts that were just written to the database."""
    log_each = attempt_log.isEnabledFor(logging.INFO)
    observe = _DURATION.observe
    with _HANDLER.batch() if log_each and _HANDLER is not None else contextlib.nullcontext():
        for result in batch:
            code = result.status_code
            (_SUCCESS if 200 <= code <= 299 else _FAILURE if code else _ERROR).inc()
            observe(result.duration_ms / 1000)
            if log_each:
                _log_attempt(result)


def _log_attempt(result: AttemptResult) -> None:
    claim, code = result.delivery, result.status_code
    attempt_log.info(
        f"attempt msg={claim.msg_id} endpoint={claim.endpoint_id} "
        f"attempt={claim.attempt_count + 1} status={code} duration_ms={result.duration_ms}"
        + (f" error={result.error}" if result.error else ""),
        extra={
            "msg_id": claim.msg_id,
            "endpoint_id": claim.endpoint_id,
            "app_id": claim.app_id,
            "attempt": claim.attempt_count + 1,
            "status": code,
            "duration_ms": result.duration_ms,
            "error": result.error,
        },
    )


class _Snapshot:
    """A collector over figures already read (collectors are synchronous, the store is
    not, so the scrape reads first and then renders)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


async def database_families(store: Store) -> list[Metric]:
    gauges = await store.queue_gauges()
    depth = GaugeMetricFamily(
        "postback_queue_deliveries",
        "Deliveries in the queue by state: due (to send now), scheduled (waiting for a "
        "retry or deliverAt), sending (claimed by a worker)",
        labels=["state"],
    )
    for state in ("due", "scheduled", "sending"):
        depth.add_metric([state], gauges[state])
    circuits = GaugeMetricFamily(
        "postback_endpoint_circuits",
        "Enabled endpoints whose circuit is not closed: open (their deliveries wait for the "
        "next probe) or half-open (the probe is out)",
        labels=["state"],
    )
    circuits.add_metric(["open"], gauges["open_circuits"])
    circuits.add_metric(["half-open"], gauges["half_open_circuits"])
    return [
        depth,
        circuits,
        _gauge(
            "postback_queue_oldest_due_seconds",
            "How late the oldest due delivery is (0 when nothing is due)",
            gauges["oldest_due_seconds"],
        ),
        _gauge(
            "postback_queue_stuck_deliveries",
            "Claims whose lease ran out over a minute ago without being taken over",
            gauges["stuck"],
        ),
        _gauge(
            "postback_endpoints_disabled",
            "Endpoints disabled now (by request or after failing too long)",
            gauges["disabled_endpoints"],
        ),
        _gauge(
            "postback_endpoints_paused",
            "Enabled endpoints whose receiver's Retry-After holds their deliveries back now",
            gauges["paused_endpoints"],
        ),
    ]


async def scrape(store: Store) -> bytes:
    """The Prometheus text exposition: this process's metrics, then the database's."""
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(_Snapshot(await database_families(store)))
    return generate_latest(REGISTRY) + generate_latest(snapshot)


# ---- logging -------------------------------------------------------------------------

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


class _BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that, inside ``batch()``, writes the lines of its records in one
    write instead of one write (and flush) each. Every record is still its own line."""

    _pending: list[str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending is None:
            super().emit(record)
            return
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self._pending = []
        try:
            yield
        finally:
            lines, self._pending = self._pending, None
            if lines:
                with self.lock:  # type: ignore[union-attr]
                    self.stream.write("".join(lines))
                    self.flush()


_HANDLER: _BatchingHandler | None = None


def setup_logging(log_format: str, level: str = "info") -> None:
    """``text`` for people, ``json`` (one object per line) for log shippers. At ``info``
    every delivery attempt is a line; ``warning`` keeps only problems."""
    global _HANDLER
    if level.lower() not in LOG_LEVELS:
        raise SettingsError(f"POSTBACK_LOG_LEVEL: expected debug, info or warning, not {level!r}")
    # What no format of ours shows, and what every record would otherwise pay for (the
    # logging documentation's own advice): the caller's file and line, thread and process.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = _HANDLER = _BatchingHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    elif log_format == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        raise SettingsError(f"POSTBACK_LOG_FORMAT: expected text or json, not {log_format!r}")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LOG_LEVELS[level.lower()])
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # start-up chatter
    # uvicorn's own loggers print through their handlers; route them through ours.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def serve_worker_metrics(host: str, port: int) -> None:
    """A worker process has no API port: its counters, the attempt histogram and its slots
    in use are served from a thread (prometheus-client's own server). The database's gauges
    come from the API's /metrics, once for the whole system."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host)


# ---- the /metrics route --------------------------------------------------------------

METRICS_ACCESS = ("open", "token", "off")


async def metrics_endpoint(request: Request) -> Response:
    return Response(await scrape(request.app.state.store), media_type=CONTENT_TYPE_LATEST)


def mount(app: FastAPI, settings: Settings) -> None:
    """GET /metrics on the API port: open (what Prometheus expects of a scrape target),
    behind an operator token (Prometheus sends it with ``authorization: credentials``),
    or off, as POSTBACK_METRICS_ACCESS says."""
    access = settings.metrics_access
    if access not in METRICS_ACCESS:
        raise SettingsError(f"POSTBACK_METRICS_ACCESS: expected open, token or off, not {access!r}")
    if access == "off":
        return
    from postback.api.deps import OPERATOR  # the API layer, only where it is mounted

    app.add_api_route(
        "/metrics",
        metrics_endpoint,
        methods=["GET"],
        include_in_schema=False,
        dependencies=OPERATOR if access == "token" else None,
    )
