"""postback's benchmark suite: ``make bench`` (or ``python bench/run.py``).

Every figure is measured beside a baseline taken in the same run and reported as a ratio,
because shared machines are noisy; the absolute numbers are printed next to it. Receivers are
separate processes (``bench/receiver.py``); the process under test is pinned to one core with
``taskset`` and everything else to the other, where the machine has two cores or more.

The table is printed and appended, with date, commit and machine, to ``bench/RESULTS.md``.
PostgreSQL rows need a server (``POSTBACK_BENCH_PG``, default
``postgresql://postgres@127.0.0.1:5432/postgres``); without one they are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import sqlalchemy as sa

Popen = subprocess.Popen[bytes]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from postback import ids  # noqa: E402
from postback.domain import MessageStatus, TriggerType, encode_json, utcnow  # noqa: E402
from postback.signing import decode_secret, generate_secret, signature_header  # noqa: E402
from postback.store import schema as t  # noqa: E402
from postback.store.migrate import migrate  # noqa: E402
from postback.store.routing import new_delivery  # noqa: E402
from postback.store.secretbox import SecretBox  # noqa: E402
from postback.store.store import Store  # noqa: E402

TOKEN = "pb_bench_" + secrets.token_hex(12)
KEY = os.urandom(32)
EVENT = "invoice.paid"
PAYLOAD_1K = {"type": EVENT, "data": {"id": "in_1", "pad": "x" * 960}}
CONCURRENCY = 200  # the worker's default in-flight limit; the bare loop uses the same

CAN_PIN = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
SENDER_CPU, OTHER_CPU = "1", "0"


# ---- processes -------------------------------------------------------------------------


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if CAN_PIN else argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str] | None = None) -> Iterator[Popen]:
    """A child process, terminated (and its output shown if it failed) on the way out."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.returncode not in (0, -15):
                log.seek(0)
                sys.stderr.write(log.read()[-3000:].decode(errors="replace"))


@contextlib.contextmanager
def receiver(delay: float = 0.0) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "receiver.py"), str(port), "--delay", str(delay)]
    with process(pinned(OTHER_CPU, argv)):
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _get_ok(url + "/_stats"), 15, "receiver")
        yield url


def postback(command: str, cpu: str = SENDER_CPU) -> list[str]:
    """argv of a postback command on ``cpu``; its settings come from the environment."""
    return pinned(cpu, [sys.executable, "-m", "postback.cli", command])


def env_for(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBACK_")}
    env |= {
        "POSTBACK_DATABASE_URL": db_url,
        "POSTBACK_ADMIN_TOKEN": TOKEN,
        "POSTBACK_SECRET_KEY": base64.b64encode(KEY).decode(),
        "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",
        **extra,
    }
    return env


def _get_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status < 300
    except OSError:
        return False


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.time()
        time.sleep(every)
    raise TimeoutError(f"{what}: not done in {timeout}s")


def receiver_json(url: str, path: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url + path, timeout=10) as r:
        return json.loads(r.read())


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


# ---- databases ---------------------------------------------------------------------------


@dataclass
class Database:
    name: str  # "SQLite" / "PostgreSQL"
    url: str
    drop: Callable[[], None] = field(default=lambda: None)


def sqlite_db(tmp: Path, tag: str) -> Database:
    return Database("SQLite", f"sqlite:///{tmp / f'bench-{tag}.db'}")


def pg_admin_url() -> str:
    return os.environ.get("POSTBACK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_available() -> bool:
    async def ping() -> bool:
        try:
            conn = await asyncpg.connect(pg_admin_url(), timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    return asyncio.run(ping())


def pg_db(tag: str) -> Database:
    name = f"pb_bench_{tag}_{secrets.token_hex(4)}"
    admin = pg_admin_url()

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    base = admin.rsplit("/", 1)[0]
    return Database(
        "PostgreSQL",
        f"{base}/{name}",
        lambda: asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')),
    )


async def open_store(db: Database) -> Store:
    store = Store.connect(db.url, secret_box=SecretBox(KEY))
    await migrate(store.engine)
    return store


async def make_app(store: Store, hook_urls: list[str]) -> tuple[str, list[str]]:
    with contextlib.suppress(Exception):
        await store.create_event_type({"name": EVENT, "description": "bench"})
    app = await store.create_app({"name": "bench"})
    eps = []
    for url in hook_urls:
        ep = await store.create_endpoint(app["id"], {"url": url, "secret": generate_secret()})
        eps.append(ep["id"])
    return app["id"], eps


async def enqueue(store: Store, app_id: str, count: int) -> None:
    payload = encode_json(PAYLOAD_1K)
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            await store.create_message(app_id, {"event_type": EVENT, "payload": payload})

    await asyncio.gather(*(one(i) for i in range(count)))


async def _closing(opened: Awaitable[Store]) -> None:
    await (await opened).close()


async def count_status(store: Store, status: int) -> int:
    d = t.deliveries.c
    async with store.engine.connect() as conn:
        stmt = sa.select(sa.func.count()).select_from(t.deliveries).where(d.status == status)
        return (await conn.execute(stmt)).scalar_one()


# ---- the bare baseline loop (run as its own pinned process) ------------------------------


async def bare_loop(url: str, count: int, concurrency: int, rounds: int) -> list[float]:
    """POST the same signed 1 KB body ``count`` times with aiohttp at ``concurrency``,
    ``rounds`` times; returns the seconds of each round."""
    body = encode_json(PAYLOAD_1K)
    key = decode_secret(generate_secret())
    msg_id = ids.new_id(ids.MESSAGE)
    connector = aiohttp.TCPConnector(limit=concurrency)
    times = []
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(rounds):
            left = count

            async def one_sender() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    ts = int(time.time())
                    headers = {
                        "content-type": "application/json",
                        "webhook-id": msg_id,
                        "webhook-timestamp": str(ts),
                        "webhook-signature": signature_header([key], msg_id, ts, body),
                    }
                    async with session.post(url, data=body, headers=headers) as r:
                        await r.read()

            started = time.perf_counter()
            await asyncio.gather(*(one_sender() for _ in range(concurrency)))
            times.append(time.perf_counter() - started)
    return times


def run_bare(url: str, count: int, concurrency: int = CONCURRENCY, rounds: int = 1) -> list[float]:
    argv = [sys.executable, __file__, "--bare", url, str(count), str(concurrency), str(rounds)]
    out = subprocess.run(pinned(SENDER_CPU, argv), capture_output=True, check=True, text=True)
    return json.loads(out.stdout)


# ---- figures -----------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    value: str
    baseline: str
    ratio: float | None
    target: str
    ok: bool | None

    def cells(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}"
        verdict = "" if self.ok is None else ("yes" if self.ok else "**no**")
        return [self.figure, self.value, self.baseline, ratio, self.target, verdict]


def bench_worker(db: Database, count: int) -> Row:
    """One worker process: due delivery -> signed -> POSTed -> attempt recorded."""
    with receiver() as hook:

        async def measure(rounds: int) -> tuple[float, float]:
            """Best of ``rounds`` for postback (each queues ``count`` messages and starts a
            fresh worker) and for the bare loop, alternating: a noisy neighbour then skews
            neither side of the ratio alone."""
            store = await open_store(db)
            app_id, _ = await make_app(store, [hook + "/w"])
            best = best_bare = float("inf")
            try:
                for n in range(1, rounds + 1):
                    await enqueue(store, app_id, count)
                    receiver_json(hook, "/_reset")
                    env = env_for(db.url, POSTBACK_WORKER_CONCURRENCY=str(CONCURRENCY))
                    with process(postback("worker"), env):
                        deadline = time.monotonic() + 240
                        while await count_status(store, MessageStatus.SUCCESS) < n * count:
                            if time.monotonic() > deadline:
                                raise TimeoutError("worker: deliveries not recorded in 240 s")
                            await asyncio.sleep(0.05)
                        finished = time.time()
                    best = min(best, finished - min(receiver_json(hook, "/_times").values()))
                    best_bare = min(best_bare, *run_bare(hook + "/bare", count))
            finally:
                await store.close()
            return best, best_bare

        elapsed, bare = asyncio.run(measure(3))
    rate, base_rate = count / elapsed, count / bare
    ratio = rate / base_rate
    return Row(
        f"worker deliveries/s, {db.name}",
        f"{rate:,.0f}/s",
        f"bare aiohttp loop {base_rate:,.0f}/s",
        ratio,
        "≥ 0.60",
        ratio >= 0.6,
    )


async def closed_loop_rate(
    make: Callable[[aiohttp.ClientSession], Awaitable[int]], seconds: float, concurrency: int
) -> float:
    """Requests/s of ``concurrency`` clients calling ``make`` back to back for ``seconds``."""
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        warm_until = time.monotonic() + 1.0
        while time.monotonic() < warm_until:
            await make(s)
        stop_at = time.monotonic() + seconds

        async def client() -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                if await make(s) < 300:
                    done += 1

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return done / (time.monotonic() - started)


def bench_api(db: Database, seconds: float = 4.0) -> Row:
    """One API process: POST /msg/ (1 KB payload, 1 endpoint) against GET /api/v1/health."""

    async def setup() -> str:
        store = await open_store(db)
        try:
            app_id, _ = await make_app(store, ["http://127.0.0.1:9/never"])
        finally:
            await store.close()
        return app_id

    app_id = asyncio.run(setup())
    port = free_port()
    env = env_for(db.url, POSTBACK_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    auth = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    body = encode_json({"eventType": EVENT, "payload": PAYLOAD_1K})
    with process(postback("api"), env):
        wait_for(lambda: _get_ok(base + "/api/v1/health"), 30, "api")

        async def health(s: aiohttp.ClientSession) -> int:
            async with s.get(base + "/api/v1/health") as r:
                return r.status

        async def post(s: aiohttp.ClientSession) -> int:
            async with s.post(f"{base}/api/v1/app/{app_id}/msg", data=body, headers=auth) as r:
                await r.read()
                return r.status

        # Alternate short windows and keep the best of each: a noisy neighbour then skews
        # neither side of the ratio alone.
        base_rates, rates = [], []
        for _ in range(3):
            base_rates.append(asyncio.run(closed_loop_rate(health, seconds / 2, 16)))
            rates.append(asyncio.run(closed_loop_rate(post, seconds / 2, 16)))
        base_rate, rate = max(base_rates), max(rates)
    ratio = rate / base_rate
    return Row(
        f"API accepted msg/s, {db.name}",
        f"{rate:,.0f}/s",
        f"GET /health {base_rate:,.0f}/s",
        ratio,
        "≥ 0.50",
        ratio >= 0.5,
    )


@contextlib.contextmanager
def service(db: Database) -> Iterator[str]:
    """postback as deployed on each database: `serve` (one process) on SQLite; `api` beside a
    pinned `worker` on PostgreSQL. Yields the API's base URL."""
    port = free_port()
    env = env_for(db.url, POSTBACK_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        if db.name == "SQLite":
            stack.enter_context(process(postback("serve"), env))
        else:
            stack.enter_context(process(postback("api", cpu=OTHER_CPU), env))
            stack.enter_context(process(postback("worker"), env))
        wait_for(lambda: _get_ok(base + "/api/v1/health"), 30, "service")
        yield base


def bench_latency(db: Database, rate: int = 100, seconds: float = 5.0) -> Row:
    """Open-loop load at ``rate`` msg/s: request sent -> webhook received."""
    with receiver() as hook:

        async def setup() -> str:
            store = await open_store(db)
            try:
                app_id, _ = await make_app(store, [hook + "/lat"])
            finally:
                await store.close()
            return app_id

        app_id = asyncio.run(setup())
        with service(db) as base:
            sent: dict[str, float] = {}

            async def load() -> None:
                auth = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
                url = f"{base}/api/v1/app/{app_id}/msg"
                async with aiohttp.ClientSession(headers=auth) as s:

                    async def one(i: int) -> None:
                        body = encode_json({"eventType": EVENT, "payload": PAYLOAD_1K | {"n": i}})
                        t0 = time.time()
                        async with s.post(url, data=body) as r:
                            sent[(await r.json())["id"]] = t0

                    for _ in range(20):  # warm-up: connections, caches
                        await one(-1)
                    sent.clear()
                    tasks = []
                    start = time.monotonic()
                    for i in range(int(rate * seconds)):
                        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
                        tasks.append(asyncio.create_task(one(i)))
                    await asyncio.gather(*tasks)

            asyncio.run(load())

            def arrived() -> bool:
                times = receiver_json(hook, "/_times")
                return all(f"/lat {m}" in times for m in sent)

            wait_for(arrived, 60, "latency messages", every=0.2)
            times = receiver_json(hook, "/_times")
    lat = sorted((times[f"/lat {m}"] - t0) * 1000 for m, t0 in sent.items())
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return Row(
        f"latency accept→received at {rate} msg/s, {db.name}",
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        "—",
        None,
        "p50 < 10 ms, p99 < 50 ms",
        p50 < 10 and p99 < 50,
    )


def bench_fanout(db: Database, endpoints: int = 1000) -> Row:
    """One message to ``endpoints`` endpoints, from POST to the last arrival."""
    with receiver() as hook:

        async def setup() -> str:
            store = await open_store(db)
            try:
                app_id, _ = await make_app(store, [f"{hook}/f{i}" for i in range(endpoints)])
            finally:
                await store.close()
            return app_id

        app_id = asyncio.run(setup())
        env_auth = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
        with service(db) as base:

            def one_round() -> float:
                receiver_json(hook, "/_reset")
                body = encode_json({"eventType": EVENT, "payload": PAYLOAD_1K})
                started = time.time()
                import urllib.request

                req = urllib.request.Request(
                    f"{base}/api/v1/app/{app_id}/msg", data=body, headers=env_auth
                )
                urllib.request.urlopen(req, timeout=30).close()
                wait_for(
                    lambda: receiver_json(hook, "/_stats")["count"] >= endpoints,
                    120,
                    "fan-out",
                    every=0.02,
                )
                return max(receiver_json(hook, "/_times").values()) - started

            one_round()  # warm-up: connections to the receiver
            # Alternate postback and the bare loop (each warm: its first round opens the
            # connections), best of three each: a noisy neighbour then skews neither side.
            took = bare = float("inf")
            for _ in range(3):
                took = min(took, one_round())
                bare = min(bare, run_bare(hook + "/bare", endpoints, rounds=2)[1])
    ratio = took / bare
    return Row(
        f"fan-out 1 msg → {endpoints} endpoints, {db.name}",
        f"{took * 1000:.0f} ms",
        f"{endpoints} bare POSTs {bare * 1000:.0f} ms",
        ratio,
        "≤ 1.5x",
        ratio <= 1.5,
    )


async def _fill_queue(store: Store, app_id: str, future: int) -> None:
    """``future`` deliveries due tomorrow: messages x fake endpoints, inserted in SQL."""
    per_side = 1000
    n_messages = future // per_side
    now = utcnow()
    marker = secrets.token_hex(6)  # tells this fill's rows from earlier ones
    sealed, body = f"unused-{marker}", f'{{"fill":"{marker}"}}'.encode()
    async with store.engine.begin() as conn:
        await conn.execute(
            t.endpoints.insert(),
            [
                {
                    "id": ids.new_id(ids.ENDPOINT),
                    "app_id": app_id,
                    "url": "http://127.0.0.1:9/x",
                    "description": "",
                    "disabled": False,
                    "metadata": {},
                    "headers": {},
                    "secret": sealed,
                    "created_at": now,
                    "updated_at": now,
                }
                for _ in range(per_side)
            ],
        )
        await conn.execute(
            t.messages.insert(),
            [
                {
                    "id": ids.new_id(ids.MESSAGE),
                    "app_id": app_id,
                    "event_type": EVENT,
                    "payload": body,
                    "created_at": now,
                }
                for _ in range(n_messages)
            ],
        )
        template = new_delivery(
            "tmpl", "tmpl", app_id, now + dt.timedelta(days=1), now
        )  # column values the SQL copies
        # As the store writes them: due tomorrow, so parked (wake_at), not in the queue index.
        await conn.execute(
            sa.text(
                "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count,"
                " trigger_type, next_attempt_at, wake_at, rate_slot, created_at, updated_at)"
                " SELECT 'dlv_' || substr(m.id, length(m.id) - 15) || substr(e.id, length(e.id)"
                " - 15), m.id, e.id, :app, :status, 0, :trigger, :due, :wake, false, :now, :now"
                " FROM messages m CROSS JOIN endpoints e"
                " WHERE m.payload = :marker AND e.secret = :sealed"
            ).bindparams(
                sa.bindparam("due", type_=t.deliveries.c.next_attempt_at.type),
                sa.bindparam("wake", type_=t.deliveries.c.wake_at.type),
                sa.bindparam("now", type_=t.deliveries.c.created_at.type),
            ),
            {
                "app": app_id,
                "status": int(MessageStatus.PENDING),
                "trigger": int(TriggerType.SCHEDULED),
                "due": template["next_attempt_at"],
                "wake": template["wake_at"],
                "now": now,
                "marker": body,
                "sealed": sealed,
            },
        )
        if store.backend.name == "postgresql":
            await conn.execute(sa.text("ANALYZE deliveries"))


async def _claim_times(store: Store, ep_id: str, due: int, rounds: int) -> float:
    """Median seconds of claiming ``due`` due deliveries, over ``rounds`` claims."""
    d = t.deliveries.c
    times = []
    for _ in range(rounds):
        async with store.engine.begin() as conn:  # make them due again (not timed)
            await conn.execute(
                t.deliveries.update()
                .where(d.endpoint_id == ep_id)
                .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1), lease=None)
            )
        started = time.perf_counter()
        claimed = await store.claim_due_deliveries(due, 60)
        times.append(time.perf_counter() - started)
        assert len(claimed) == due, (len(claimed), due)
    return statistics.median(times)


def bench_claim(db: Database, due: int = 100, small: int = 10_000, large: int = 1_000_000) -> Row:
    """Claiming ``due`` due deliveries with ``small`` vs ``large`` future ones queued."""

    async def run() -> tuple[float, float]:
        store = await open_store(db)
        try:
            app_id, (ep_id,) = await make_app(store, ["http://127.0.0.1:9/due"])
            # The figure is the claim's cost, not the endpoint's cap: let it take them all.
            await store.update_endpoint(app_id, ep_id, {"max_in_flight": due})
            await enqueue(store, app_id, due)
            await _fill_queue(store, app_id, small)
            small_t = await _claim_times(store, ep_id, due, 25)
            await _fill_queue(store, app_id, large - small)
            large_t = await _claim_times(store, ep_id, due, 25)
        finally:
            await store.close()
        return small_t, large_t

    small_t, large_t = asyncio.run(run())
    ratio = large_t / small_t
    return Row(
        f"claim {due} with {large:,} future queued, {db.name}",
        f"{large_t * 1000:.2f} ms",
        f"{small:,} queued {small_t * 1000:.2f} ms",
        ratio,
        "≤ 1.3x",
        ratio <= 1.3,
    )


def bench_memory(db: Database, in_flight: int = 1000) -> Row:
    """Worker RSS with ``in_flight`` requests held open by a slow receiver."""
    with receiver(delay=8.0) as hook:

        async def setup() -> Store:
            store = await open_store(db)
            app_id, _ = await make_app(store, [hook + "/mem"])
            await enqueue(store, app_id, in_flight + 200)
            return store

        asyncio.run(_closing(setup()))
        env = env_for(
            db.url,
            POSTBACK_WORKER_CONCURRENCY=str(in_flight),
            POSTBACK_ENDPOINT_MAX_IN_FLIGHT=str(in_flight),  # one endpoint holds them all
        )
        with process(postback("worker"), env) as proc:
            wait_for(
                lambda: receiver_json(hook, "/_stats")["in_flight"] >= in_flight,
                60,
                f"{in_flight} requests in flight",
            )
            time.sleep(0.5)
            held = receiver_json(hook, "/_stats")["in_flight"]
            rss, peak = rss_mib(proc.pid)  # taskset execs the worker: same pid
    return Row(
        f"worker memory, {held} requests in flight, {db.name}",
        f"{rss:.0f} MiB RSS (peak {peak:.0f})",
        "—",
        None,
        "< 200 MB",
        peak * 1.048576 < 200,
    )


# ---- the report --------------------------------------------------------------------------


COMMERCE = ROOT / "examples" / "catalogs" / "commerce.json"
# An affiliate's endpoint: big purchases of one product in two countries, without buyer data.
RULE_FILTER = {
    "data.product.id": {"$exists": True},
    "data.purchase.price.value": {"$gte": 1},
    "$or": [{"data.buyer.address.country": {"$in": ["MX", "BR"]}}, {"event": {"$ne": "x"}}],
}
RULE_PROJECTION = {"exclude": ["/data/buyer", "/data/purchase/payment"]}


def _purchase_example() -> dict[str, Any]:
    catalog = json.loads(COMMERCE.read_text())
    (approved,) = [e for e in catalog["eventTypes"] if e["name"] == "purchase.approved"]
    return approved["schemas"]["1"]["examples"][0]


def bench_rules_cpu(rounds: int = 20_000) -> Row:
    """Filter + projection per delivery, against signing the same body (which every
    delivery pays): pure CPU, no database."""
    from postback.domain import decode_json
    from postback.filters import compile_filter, project

    body = encode_json(_purchase_example())
    key = decode_secret(generate_secret())

    def per_call(fn: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(rounds):
                fn()
            best = min(best, (time.perf_counter() - t0) / rounds)
        return best

    doc = decode_json(body)  # parsed once per message, whatever the endpoint count

    def rules() -> None:
        assert compile_filter(RULE_FILTER)(doc) is None
        project(doc, RULE_PROJECTION)

    rule_s = per_call(rules)
    sign_s = per_call(lambda: signature_header([key], "msg_x", 1_700_000_000, body))
    return Row(
        f"filter + projection per delivery ({len(body)} B purchase, parsed once)",
        f"{rule_s * 1e6:.1f} µs",
        f"signing it {sign_s * 1e6:.1f} µs",
        rule_s / sign_s,
        "(cost in signatures)",
        None,
    )


def bench_rules_ingest(db: Database, messages: int = 300, endpoints: int = 10) -> Row:
    """Accepting a message for 10 endpoints that each filter and project it, against 10
    endpoints without rules: the whole ingest transaction, in the store."""
    payload = encode_json(_purchase_example())

    async def rate(rules: bool) -> float:
        store = await open_store(db)
        try:
            app = await store.create_app({"name": f"rules-{rules}"})
            for i in range(endpoints):
                values: dict[str, Any] = {"url": f"http://127.0.0.1:9/{i}"}
                if rules:
                    values |= {"payload_filter": RULE_FILTER, "projection": RULE_PROJECTION}
                values["secret"] = generate_secret()
                await store.create_endpoint(app["id"], values)
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(messages):
                    await store.create_message(
                        app["id"], {"event_type": "purchase.approved", "payload": payload}
                    )
                best = min(best, time.perf_counter() - t0)
            return messages / best
        finally:
            await store.close()

    async def both() -> tuple[float, float]:
        plain, ruled = await rate(False), await rate(True)
        plain = max(plain, await rate(False))  # alternate: noise skews neither side alone
        return plain, max(ruled, await rate(True))

    plain, ruled = asyncio.run(both())
    ratio = ruled / plain
    return Row(
        f"ingest to {endpoints} endpoints with filter + projection, {db.name}",
        f"{ruled:,.0f} msg/s",
        f"no rules {plain:,.0f} msg/s",
        ratio,
        "≥ 0.70",
        ratio >= 0.7,
    )


def machine() -> str:
    cpu = "unknown cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{platform.node()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (out.stdout.strip() or "unknown") + ("+dirty" if dirty else "")


def table(rows: list[Row]) -> str:
    head = ["figure", "postback", "baseline (same run)", "ratio", "target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bare", nargs=4, metavar=("URL", "N", "CONCURRENCY", "ROUNDS"))
    parser.add_argument(
        "--only",
        help="comma-separated: worker,api,latency,fanout,claim,memory,rules,rules-cpu,"
        "isolation,slow-receivers,claim-backlog,tracing,tracing-off,tracing-api",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    import scheduling  # bench/scheduling.py: it imports this module's helpers as `run`
    import tracing  # bench/tracing.py, the same way

    if args.bare:
        url, n, conc, rounds = args.bare
        print(json.dumps(asyncio.run(bare_loop(url, int(n), int(conc), int(rounds)))))
        return

    everything = (
        "worker,api,latency,fanout,claim,memory,rules,rules-cpu,"
        "isolation,slow-receivers,claim-backlog,tracing,tracing-off"
    )
    wanted = set((args.only or everything).split(","))
    dbs: list[Callable[[str], Database]] = []
    with tempfile.TemporaryDirectory(prefix="postback-bench-") as tmp:
        dbs.append(lambda tag: sqlite_db(Path(tmp), tag))
        if pg_available():
            dbs.append(pg_db)
        else:
            print(f"PostgreSQL not reachable at {pg_admin_url()}: its rows are skipped")
        plan: list[tuple[str, Callable[[Database], Row], bool]] = [
            ("worker", lambda db: bench_worker(db, 4000), True),
            ("api", bench_api, True),
            ("latency", bench_latency, True),
            ("fanout", bench_fanout, True),
            ("claim", bench_claim, True),
            ("memory", bench_memory, False),
            ("rules", bench_rules_ingest, True),
            ("rules-cpu", lambda db: bench_rules_cpu(), False),
            ("isolation", lambda db: scheduling.bench_isolation(db), True),
            ("slow-receivers", lambda db: scheduling.bench_slow_receivers(db), True),
            ("claim-backlog", lambda db: scheduling.bench_claim_beside_backlog(db), True),
            ("tracing", lambda db: tracing.bench_worker(db), True),
            ("tracing-off", lambda db: tracing.bench_off_hooks(), False),
            ("tracing-api", lambda db: tracing.bench_api(db), True),
        ]
        rows: list[Row] = []
        started = time.monotonic()
        for name, figure, per_db in plan:
            if name not in wanted:
                continue
            for make_db in dbs if per_db else dbs[-1:]:
                db = make_db(name)
                try:
                    t0 = time.monotonic()
                    row = figure(db)
                    print(
                        f"  {row.figure}: {row.value} vs {row.baseline} "
                        f"({time.monotonic() - t0:.0f}s)",
                        flush=True,
                    )
                    rows.append(row)
                finally:
                    db.drop()
    took = time.monotonic() - started
    header = (
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · commit {commit()} · {machine()}"
        f" · sender pinned: {'yes' if CAN_PIN else 'no'} · {took:.0f} s"
    )
    report = f"{header}\n\n{table(rows)}\n"
    print("\n" + report)
    if not args.no_record:
        results = ROOT / "bench" / "RESULTS.md"
        if not results.exists():
            results.write_text(
                "# Benchmark results\n\nAppended by `make bench` (bench/run.py); newest last.\n"
            )
        with results.open("a") as f:
            f.write("\n" + report)


if __name__ == "__main__":
    main()
