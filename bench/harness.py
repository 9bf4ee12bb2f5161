"""The benchmark harness that bench/run.py and every benchmark module share: child processes
pinned to a core, receivers, databases (a fresh SQLite file or PostgreSQL database per
figure), the bare aiohttp loop that is the baseline of the delivery figures, a closed-loop
rate meter, the ``Row`` a benchmark returns, and the results table (printed and recorded to
``bench/RESULTS.md``).

A benchmark is a function ``(Database) -> Row`` in a module of its own (throughput.py,
latency.py, claims.py, memory.py, rules.py, scheduling.py); run.py lists them.
"""

from __future__ import annotations

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
from postback.domain import encode_json  # noqa: E402
from postback.signing import decode_secret, generate_secret, signature_header  # noqa: E402
from postback.store import schema as t  # noqa: E402
from postback.store.migrate import migrate  # noqa: E402
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
        wait_for(lambda: get_ok(url + "/_stats"), 15, "receiver")
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


def get_ok(url: str) -> bool:
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


async def closing(opened: Awaitable[Store]) -> None:
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
    run_py = str(ROOT / "bench" / "run.py")
    argv = [sys.executable, run_py, "--bare", url, str(count), str(concurrency), str(rounds)]
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
        wait_for(lambda: get_ok(base + "/api/v1/health"), 30, "service")
        yield base


# ---- the report ----------------------------------------------------------------------------


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


def report(rows: list[Row], took: float) -> str:
    """The run's heading (date, commit, machine, pinning, duration) and its table."""
    header = (
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · commit {commit()} · {machine()}"
        f" · sender pinned: {'yes' if CAN_PIN else 'no'} · {took:.0f} s"
    )
    return f"{header}\n\n{table(rows)}\n"


def record(report: str) -> None:
    """Append a run's report to bench/RESULTS.md (newest last)."""
    results = ROOT / "bench" / "RESULTS.md"
    if not results.exists():
        results.write_text(
            "# Benchmark results\n\nAppended by `make bench` (bench/run.py); newest last.\n"
        )
    with results.open("a") as f:
        f.write("\n" + report)
