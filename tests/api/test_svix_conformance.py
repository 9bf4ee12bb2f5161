"""postback measured against Svix's own OpenAPI document (tests/data/svix-openapi.json): the
schemathesis CLI runs every operation in it against a live server with the four checks a
Svix user relies on (no 5xx, documented status codes, content types and response schemas),
derandomized, and must find nothing but the few places where the document is wrong about
Svix's own server (tests/support/svix_spec.py EXCUSED, docs/svix-compatibility.md).

The suite runs the examples and fuzzing phases with 15 examples per operation. The full
measurement adds the coverage phase (about 2,300 more requests, several minutes on a busy
machine): ``POSTBACK_SVIX_PHASES=examples,coverage,fuzzing``; ``POSTBACK_SVIX_EXAMPLES``
raises the examples per operation."""

from __future__ import annotations

import collections
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from svix.api import ApplicationIn, EndpointIn, EventTypeIn, MessageIn

from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle, server_settings
from tests.support.svix_spec import EXCUSED, load_spec, operations, repaired

HOOKS = Path(__file__).resolve().parents[1] / "support" / "svix_conformance_hooks.py"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
EXAMPLES = max(15, int(os.environ.get("POSTBACK_SVIX_EXAMPLES", "15")))
PHASES = os.environ.get("POSTBACK_SVIX_PHASES", "examples,fuzzing")
SEED = 24


# The operations split in two runs, each against a server of its own, side by side: the
# generation is CPU-bound (about 45 ms a case), and two processes use both cores.
# GET/POST /api/v1/app are in both: they make the applications the other calls address.
SHARDS = {
    "endpoints": ["--include-path-regex", "/endpoint|^/api/v1/app$"],
    "the rest": ["--exclude-path-regex", "/endpoint"],
}


def _seed_world(server: ServerHandle, receiver: Receiver) -> None:
    """The rows the document's own examples name (application ``unique-app-identifier``,
    endpoint ``unique-ep-identifier``, message ``unique-msg-identifier``, event type
    ``user.signup``), so example requests find them; schemathesis also reuses the ids it
    sees in answers."""
    svix = server.svix()
    svix.event_type.create(EventTypeIn(name="user.signup", description="A user signed up"))
    app = svix.application.create(ApplicationIn(name="shop", uid="unique-app-identifier"))
    url = receiver.route("/ok", ok())
    svix.endpoint.create(app.id, EndpointIn(url=url, uid="unique-ep-identifier"))
    event = MessageIn(event_type="user.signup", payload={"a": 1}, event_id="unique-msg-identifier")
    svix.message.create(app.id, event)


def _start(server: ServerHandle, workdir: Path, selection: list[str]) -> subprocess.Popen:
    workdir.mkdir()
    spec = workdir / "svix-openapi.json"
    spec.write_text(json.dumps(repaired(load_spec())))
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "run", str(spec)),
        *("--url", server.url),
        *selection,
        *("--checks", ",".join(CHECKS)),
        *("--phases", PHASES),
        *("--max-examples", str(EXAMPLES)),
        *("--seed", str(SEED)),
        "--generation-deterministic",
        # The hooks set the Authorization header of every request: none to generate.
        *("--generation-with-security-parameters", "false"),
        *("--workers", "1"),
        "--continue-on-failure",
        "--no-shrink",  # a regression is reported at once, not after minutes of shrinking
        *("--request-timeout", "30"),
        "--no-color",
        *("--report", "ndjson", "--report-ndjson-path", str(workdir / "report.ndjson")),
    ]
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "SVIX_CONFORMANCE_URL": server.url,
        "SVIX_CONFORMANCE_TOKEN": server.token,
    }
    output = (workdir / "output.txt").open("w")
    return subprocess.Popen(command, cwd=workdir, env=env, stdout=output, stderr=output)


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process (the servers) and of its finished children (the runs)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _scenarios(report: Path) -> list[dict]:
    events = (json.loads(line) for line in report.read_text().splitlines() if line)
    return [e["ScenarioFinished"] for e in events if "ScenarioFinished" in e]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServerHandle]]:
    """One server (on SQLite) for each shard: neither run sees the other's rows."""
    handles: list[ServerHandle] = []
    try:
        for n in range(len(SHARDS)):
            url = f"sqlite:///{tmp_path / f'shard{n}.db'}"
            handles.append(ServerHandle(server_settings(url)).start())
        yield handles
    finally:
        for handle in handles:
            handle.stop()


def test_svix_openapi_document_finds_no_deviation(
    servers: list[ServerHandle], receiver: Receiver, tmp_path: Path
) -> None:
    started, before = time.monotonic(), _cpu()
    runs = {}
    for n, (server, (name, selection)) in enumerate(zip(servers, SHARDS.items(), strict=True)):
        _seed_world(server, receiver)
        runs[name] = (_start(server, tmp_path / f"shard{n}", selection), tmp_path / f"shard{n}")
    try:
        for name, (process, workdir) in runs.items():
            code = process.wait(timeout=900)
            assert code == 0, (name, (workdir / "output.txt").read_text()[-20000:])
    finally:
        for process, _ in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    cases: collections.Counter[str] = collections.Counter()
    statuses: dict[str, set[int]] = collections.defaultdict(set)
    ran: set[str] = set()
    failures = []
    scenarios = [s for _, workdir in runs.values() for s in _scenarios(workdir / "report.ndjson")]
    for scenario in scenarios:
        recorder = scenario.get("recorder") or {}
        label = recorder.get("label", "")
        cases[label] += len(recorder.get("cases", {}))
        for case_id, results in recorder.get("checks", {}).items():
            ran |= {r["name"] for r in results}
            failures += [(label, r) for r in results if r["status"] != "success"]
            exchange = recorder.get("interactions", {}).get(case_id) or {}
            # (The coverage phase also sends methods the document does not have: a 405.)
            if exchange.get("response") and exchange["request"]["method"] == label.split()[0]:
                statuses[label].add(exchange["response"]["status_code"])
    assert not failures, failures[:20]
    assert ran == set(CHECKS), ran
    every = {op.label for op in operations()}
    assert set(cases) >= every, every - set(cases)  # every operation of the document ran
    servers_cpu, st_cpu = (after - first for after, first in zip(_cpu(), before, strict=True))
    print(
        f"{sum(cases.values())} cases over {len(cases)} operations in "
        f"{time.monotonic() - started:.0f} s; CPU: servers {servers_cpu:.0f} s, "
        f"schemathesis {st_cpu:.0f} s"
    )
    # Each operation with a body got its examples (one with only a path and a flag or two
    # to vary runs out of distinct cases sooner).
    thin = {label for label, n in cases.items() if n < EXAMPLES}
    assert not thin & _with_body(), {label: cases[label] for label in thin}
    # An answer the document leaves out is excused only where Svix's server gives it too.
    for label, excused in EXCUSED.items():
        assert statuses[label] <= _documented(label) | {excused.status}, statuses[label]


def _with_body() -> set[str]:
    spec = load_spec()
    paths = spec["paths"]
    return {
        op.label for op in operations(spec) if "requestBody" in paths[op.path][op.method.lower()]
    }


def _documented(label: str) -> set[int]:
    method, path = label.split(" ", 1)
    answers = load_spec()["paths"][path][method.lower()]["responses"]
    return {int(code) for code in answers if code.isdigit()}
