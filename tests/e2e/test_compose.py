"""deploy/compose.yaml, brought up as local processes: compose cannot run here, so its
services run from the file's own commands and environment (only the database's address
and the ports remapped), in the order its depends_on conditions give, on a fresh PostgreSQL
database; messages go in through one API replica and the workers deliver them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from svix.api import ApplicationIn, EndpointIn, MessageIn, Svix, SvixOptions

from tests.support import deployfiles
from tests.support.procs import POSTBACK, Proc, free_port
from tests.support.receivers import Receiver, ok
from tests.support.server import SECRET_KEY

TOKEN = "pb_compose_test_token"
VARIABLES = {"POSTBACK_SECRET_KEY": SECRET_KEY, "POSTBACK_ADMIN_TOKEN": TOKEN}
MESSAGES = 30


@pytest.fixture
def services() -> dict[str, Any]:
    return deployfiles.compose(VARIABLES)["services"]


def test_the_secret_key_and_the_token_must_be_given() -> None:
    for missing in VARIABLES:
        with pytest.raises(deployfiles.MissingVariable, match=missing):
            deployfiles.compose({k: v for k, v in VARIABLES.items() if k != missing})


def test_the_topology(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "migrate", "api", "worker"}
    postback = {name: s for name, s in services.items() if name != "postgres"}
    assert {s["image"] for s in postback.values()} == {f"postback:{_version()}"}
    assert [s["command"] for s in postback.values()] == [["migrate"], ["api"], ["worker"]]
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    # Every process shares the one key and the one database.
    envs = [deployfiles.service_environment(s) for s in postback.values()]
    assert {e["POSTBACK_SECRET_KEY"] for e in envs} == {SECRET_KEY}
    assert len({e["POSTBACK_DATABASE_URL"] for e in envs}) == 1
    # ... which is the postgres service's.
    url = urlsplit(envs[0]["POSTBACK_DATABASE_URL"])
    pg = deployfiles.service_environment(services["postgres"])
    assert (url.hostname, url.username, url.password, url.path) == (
        "postgres",
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        "/" + pg["POSTGRES_DB"],
    )
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    # The API replicas publish the port the image listens on, one host port each.
    (published,) = services["api"]["ports"]
    host_ports, _, container_port = published.rpartition(":")
    assert int(container_port) in deployfiles.dockerfile_exposed()
    first, _, last = host_ports.rpartition(":")[2].partition("-")
    assert int(last) - int(first) + 1 == services["api"]["deploy"]["replicas"]
    # The workers' health check asks the metrics port they are told to open.
    worker_env = deployfiles.service_environment(services["worker"])
    assert worker_env["POSTBACK_WORKER_METRICS_PORT"] in services["worker"]["healthcheck"]["test"]


def _version() -> str:
    import tomllib

    return tomllib.loads((deployfiles.ROOT / "pyproject.toml").read_text())["project"]["version"]


class Replica:
    """One replica of a compose service as a local process: the image's environment, then
    the service's, then what the test remaps (database address, ports)."""

    def __init__(
        self, service: dict[str, Any], remap: dict[str, str], ports: dict[str, str], cwd: Path
    ) -> None:
        self.env, self.ports, self.service = _service_env(service, remap), ports, service
        self.proc = Proc(list(service["command"]), self.env, cwd)

    def healthcheck(self) -> list[str]:
        """The service's health check command, as this machine runs it: the script the
        Dockerfile copies into the image, on the ports this replica was given."""
        kind, *args = self.service["healthcheck"]["test"]
        assert kind == "CMD"
        copied = _copied_into_image()
        return [
            sys.executable if a == "python3" else str(copied.get(a, self.ports.get(a, a)))
            for a in args
        ]

    def healthy(self) -> bool:
        done = subprocess.run(self.healthcheck(), env=self.env, capture_output=True, timeout=30)
        return done.returncode == 0


def _copied_into_image() -> dict[str, Path]:
    """Paths in the image -> the files of this checkout the Dockerfile copies there."""
    copied = {}
    for word, args in deployfiles.dockerfile_final_stage():
        parts = args.split()
        if word == "COPY" and not parts[0].startswith("--"):
            copied[parts[-1]] = deployfiles.ROOT / parts[0]
    return copied


def _wait(replicas: list[Replica], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    pending = list(replicas)
    while pending and time.monotonic() < deadline:
        for r in list(pending):
            assert r.proc.popen.poll() is None, r.proc.output()
            if r.healthy():
                pending.remove(r)
        time.sleep(0.2)
    assert not pending, "\n".join(r.proc.output() for r in pending)


def _attempts(url: str) -> float:
    """The delivery attempts a process made, from its /metrics."""
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        if family.name == "postback_delivery_attempts"
        for s in family.samples
        if s.name.endswith("_total")
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_compose_topology_delivers(
    services: dict[str, Any], database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    remap = {
        "POSTBACK_DATABASE_URL": database_url,  # the local server, a fresh database
        "POSTBACK_HOST": "127.0.0.1",  # the image's 0.0.0.0 is for a container's network
        "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver is on 127.0.0.1
    }
    migrate = subprocess.run(
        [*POSTBACK, *services["migrate"]["command"]],
        env=_service_env(services["migrate"], remap),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    apis, workers = [], []
    try:
        for _ in range(services["api"]["deploy"]["replicas"]):
            port = str(free_port())
            apis.append(Replica(services["api"], remap | {"POSTBACK_PORT": port}, {}, tmp_path))
        for _ in range(services["worker"]["deploy"]["replicas"]):
            port = str(free_port())
            listed = deployfiles.service_environment(services["worker"])
            given = listed["POSTBACK_WORKER_METRICS_PORT"]
            workers.append(
                Replica(
                    services["worker"],
                    remap | {"POSTBACK_WORKER_METRICS_PORT": port},
                    {given: port},
                    tmp_path,
                )
            )
        _wait(apis + workers)

        first, second = (f"http://127.0.0.1:{a.env['POSTBACK_PORT']}" for a in apis)
        svix = Svix(TOKEN, SvixOptions(server_url=first, retry_schedule=[], timeout=10))
        app = svix.application.create(ApplicationIn(name="shop"))
        svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/hook", ok())))
        sent = {
            svix.message.create(app.id, MessageIn(event_type="order.paid", payload={"n": n})).id
            for n in range(MESSAGES)
        }
        got = receiver.wait_for(MESSAGES, "/hook", timeout=120)
        assert {r.headers["webhook-id"] for r in got} == sent
        # The other replica sees the same messages: one database.
        other = Svix(TOKEN, SvixOptions(server_url=second, retry_schedule=[], timeout=10))
        assert len(other.message.list(app.id).data) == MESSAGES
        # The workers made the attempts, not the API replicas.
        ports = [w.env["POSTBACK_WORKER_METRICS_PORT"] for w in workers]
        assert sum(_attempts(f"http://127.0.0.1:{p}") for p in ports) >= MESSAGES
        assert _attempts(first) == _attempts(second) == 0
    finally:
        codes = {r.service["command"][0] + str(i): r.proc.stop() for i, r in enumerate(apis)}
        codes |= {r.service["command"][0] + str(i): r.proc.stop() for i, r in enumerate(workers)}
    assert set(codes.values()) == {0}, codes


def _service_env(service: dict[str, Any], remap: dict[str, str]) -> dict[str, str]:
    """The image's environment (its ENV lines), then the service's, then the remapping."""
    # The entry point the image runs is the one POSTBACK runs here.
    assert deployfiles.dockerfile_entrypoint() == ["postback"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBACK_")}
    env |= {k: v for k, v in deployfiles.dockerfile_env().items() if k != "PATH"}
    return env | deployfiles.service_environment(service) | remap
