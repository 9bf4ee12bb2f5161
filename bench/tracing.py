"""What tracing costs (issue 22), both sides of each ratio measured in the same run:

- worker deliveries/s with every attempt traced (``OTEL_TRACES_SAMPLER=always_on``, four
  spans per attempt exported as OTLP/HTTP to a sink on the other core) against the same
  worker with no OTEL variables; rounds alternate, best of each (as throughput.py's worker row);
- API accepted msg/s, traced (a request span and an ingest span per message) against
  untraced, alternating short windows (as throughput.py's API row);
- the hooks tracing leaves on the hot paths when it is off, in ns per message and per
  delivery, against a delivery's CPU (the untraced worker's rate on its one core).

    python bench/tracing.py [--db sqlite|postgresql|both] [--count 2000] [--rounds 3]
    python bench/tracing.py --sink PORT    (the OTLP sink itself, run by the bench)

run.py runs it as ``--only tracing``. Standalone, it prints the table and records nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import harness as h

from postback.domain import MessageStatus, encode_json

TRACED = {"OTEL_TRACES_SAMPLER": "always_on", "OTEL_SERVICE_NAME": "postback-bench"}


# ---- the OTLP sink: counts what it is sent, decoding it when it can ------------------------


def sink_main(port: int) -> None:
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError:  # counting requests and bytes only
        ExportTraceServiceRequest = None  # type: ignore[assignment,misc]
    stats = {"requests": 0, "bytes": 0, "spans": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            stats["requests"] += 1
            stats["bytes"] += len(raw)
            if ExportTraceServiceRequest is not None:
                request = ExportTraceServiceRequest.FromString(raw)
                stats["spans"] += sum(
                    len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans
                )
            self._answer(b"")

        def do_GET(self) -> None:
            if self.path == "/_reset":
                stats.update(requests=0, bytes=0, spans=0)
            self._answer(json.dumps(stats).encode())

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


class Sink:
    def __init__(self) -> None:
        self.port = h.free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Sink:
        argv = [sys.executable, __file__, "--sink", str(self.port)]
        self._proc = h.process(h.pinned(h.OTHER_CPU, argv))
        self._proc.__enter__()
        h.wait_for(lambda: h.get_ok(self.url + "/_stats"), 15, "OTLP sink")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._proc.__exit__(*exc)

    def stats(self) -> dict[str, int]:
        return h.receiver_json(self.url, "/_stats")

    def env(self) -> dict[str, str]:
        return TRACED | {"OTEL_EXPORTER_OTLP_ENDPOINT": self.url}


def _untraced(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("OTEL_")}


# ---- the worker ------------------------------------------------------------------------------


async def _enqueue_traced(store: Any, app_id: str, count: int) -> None:
    """Messages as a traced API writes them: each with its ingest span's traceparent."""
    payload = encode_json(h.PAYLOAD_1K)
    sem = asyncio.Semaphore(16)

    async def one() -> None:
        context = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        async with sem:
            await store.create_message(
                app_id, {"event_type": h.EVENT, "payload": payload, "trace_context": context}
            )

    await asyncio.gather(*(one() for _ in range(count)))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, all its threads (the exporter's included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_worker(db: h.Database, count: int = 2000, rounds: int = 3) -> h.Row:
    """Also the worker's CPU per delivery (from its first recorded delivery to its last),
    which a busy machine's other processes disturb less than the rate."""
    with h.receiver() as hook, Sink() as sink:

        async def measure() -> tuple[float, float, float, float, int]:
            store = await h.open_store(db)
            app_id, _ = await h.make_app(store, [hook + "/w"])
            best = {"off": float("inf"), "on": float("inf")}
            cpu = {"off": float("inf"), "on": float("inf")}
            pairs: list[float] = []  # each round's traced rate over its untraced one
            done = 0
            try:
                for n in range(rounds):
                    rate: dict[str, float] = {}
                    for mode in ("off", "on") if n % 2 == 0 else ("on", "off"):
                        await _enqueue_traced(store, app_id, count)
                        done += count
                        h.receiver_json(hook, "/_reset")
                        env = h.env_for(db.url, POSTBACK_WORKER_CONCURRENCY=str(h.CONCURRENCY))
                        env = _untraced(env) | (sink.env() if mode == "on" else {})
                        with h.process(h.postback("worker"), env) as worker:
                            deadline = time.monotonic() + 240
                            first_cpu: tuple[float, int] | None = None
                            while (
                                got := await h.count_status(store, MessageStatus.SUCCESS)
                            ) < done:
                                if time.monotonic() > deadline:
                                    raise TimeoutError("deliveries not recorded in 240 s")
                                if first_cpu is None and got > done - count:
                                    first_cpu = (_cpu_seconds(worker.pid), got)
                                await asyncio.sleep(0.02)
                            finished = time.time()
                            if first_cpu is not None and done > first_cpu[1]:
                                used = _cpu_seconds(worker.pid) - first_cpu[0]
                                cpu[mode] = min(cpu[mode], used / (done - first_cpu[1]))
                        first = min(h.receiver_json(hook, "/_times").values())
                        best[mode] = min(best[mode], finished - first)
                        rate[mode] = count / (finished - first)
                        print(f"    round {n + 1} {mode}: {rate[mode]:,.0f}/s", flush=True)
                    pairs.append(rate["on"] / rate["off"])
            finally:
                await store.close()
            print(f"    traced/untraced per round: {', '.join(f'{p:.2f}' for p in pairs)}")
            return best["off"], best["on"], cpu["off"], cpu["on"], sink.stats()["spans"]

        off, on, cpu_off, cpu_on, spans = asyncio.run(measure())
    rate_off, rate_on = count / off, count / on
    ratio = rate_on / rate_off
    expected = 4 * count * rounds  # four spans per attempt, every traced round
    return h.Row(
        f"worker deliveries/s, every attempt traced, {db.name}",
        f"{rate_on:,.0f}/s, {cpu_on * 1e6:,.0f} µs CPU each ({spans:,} spans exported)",
        f"tracing off {rate_off:,.0f}/s, {cpu_off * 1e6:,.0f} µs CPU each",
        ratio,
        "≥ 0.90",
        ratio >= 0.9 and spans >= expected,
    )


# ---- the API ---------------------------------------------------------------------------------


def bench_api(db: h.Database, seconds: float = 4.0) -> h.Row:
    async def setup() -> str:
        store = await h.open_store(db)
        try:
            app_id, _ = await h.make_app(store, ["http://127.0.0.1:9/never"])
        finally:
            await store.close()
        return app_id

    app_id = asyncio.run(setup())
    auth = {"authorization": f"Bearer {h.TOKEN}", "content-type": "application/json"}
    body = encode_json({"eventType": h.EVENT, "payload": h.PAYLOAD_1K})
    rates: dict[str, list[float]] = {"off": [], "on": []}
    with Sink() as sink:
        for n in range(3):
            for mode in ("off", "on") if n % 2 == 0 else ("on", "off"):
                port = h.free_port()
                env = _untraced(h.env_for(db.url, POSTBACK_PORT=str(port)))
                env |= sink.env() if mode == "on" else {}
                base = f"http://127.0.0.1:{port}"

                async def post(s: aiohttp.ClientSession, base: str = base) -> int:
                    url = f"{base}/api/v1/app/{app_id}/msg"
                    async with s.post(url, data=body, headers=auth) as r:
                        await r.read()
                        return r.status

                with h.process(h.postback("api"), env):
                    h.wait_for(lambda base=base: h.get_ok(base + "/api/v1/health"), 30, "api")
                    rates[mode].append(asyncio.run(h.closed_loop_rate(post, seconds / 2, 16)))
        spans = sink.stats()["spans"]
    off, on = max(rates["off"]), max(rates["on"])
    return h.Row(
        f"API accepted msg/s, every request traced, {db.name}",
        f"{on:,.0f}/s ({spans:,} spans exported)",
        f"tracing off {off:,.0f}/s",
        on / off,
        "(cost)",
        None,
    )


# ---- tracing off: the hooks left on the hot paths ---------------------------------------------


def bench_off_hooks(rounds: int = 200_000) -> h.Row:
    """Per message (API) and per delivery (worker), what runs when tracing is off, against
    signing a 1 KB body (which every delivery pays, a small share of its CPU: see
    docs/performance.md)."""
    from postback import tracing
    from postback.domain import ClaimedDelivery, TriggerType
    from postback.signing import decode_secret, generate_secret, signature_header

    assert tracing.tracer is None
    claim = ClaimedDelivery(
        "d", "l", "m", "a", "e", "http://x/", (b"k",), {}, b"{}", 0, TriggerType.SCHEDULED
    )
    header = None  # the caller sent no traceparent: the usual case

    def api_hooks() -> None:
        with tracing.ingest("invoice.paid") as span:
            tracing.stored_context(span, header)
            tracing.annotate_ingest(span, {}, True)

    tracer, send_header = None, False

    def worker_hooks() -> None:
        # _send_loop's branch and the sender's argument; the claim and record loops test
        # the same attribute once per batch.
        if tracer is None:
            _ = claim.trace_context if send_header else None

    def per_call(fn: Any) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(rounds):
                fn()
            best = min(best, (time.perf_counter() - t0) / rounds)
        return best

    key, body = decode_secret(generate_secret()), encode_json(h.PAYLOAD_1K)
    sign_ns = per_call(lambda: signature_header([key], "msg_x", 1_700_000_000, body)) * 1e9
    api_ns, worker_ns = per_call(api_hooks) * 1e9, per_call(worker_hooks) * 1e9
    return h.Row(
        "tracing off: hooks per message (API) / per delivery (worker)",
        f"{api_ns:,.0f} ns / {worker_ns:,.0f} ns",
        f"signing a 1 KB body {sign_ns / 1000:,.1f} µs",
        worker_ns / sign_ns,
        "nothing measurable",
        worker_ns < sign_ns / 10 and api_ns < sign_ns,
    )


def rows(db: h.Database, count: int = 2000, rounds: int = 3) -> list[h.Row]:
    return [bench_worker(db, count, rounds), bench_api(db)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sink", type=int, metavar="PORT")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--count", type=int, default=2000, help="messages per worker round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.sink:
        sink_main(args.sink)
        return
    out: list[h.Row] = []
    with tempfile.TemporaryDirectory(prefix="postback-bench-") as tmp:
        makers = []
        if args.db in ("sqlite", "both"):
            makers.append(lambda: h.sqlite_db(Path(tmp), "tracing"))
        if args.db in ("postgresql", "both") and h.pg_available():
            makers.append(lambda: h.pg_db("tracing"))
        for make in makers:
            db = make()
            try:
                for row in rows(db, args.count, args.rounds):
                    print(f"  {row.figure}: {row.value} vs {row.baseline}", flush=True)
                    out.append(row)
            finally:
                db.drop()
    out.append(bench_off_hooks())
    print(f"\ncommit {h.commit()} · {h.machine()} · pid {os.getpid()}\n\n{h.table(out)}")


if __name__ == "__main__":
    main()
