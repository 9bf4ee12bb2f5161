"""The Dockerfile's image, built with podman on a Debian base, and its entry point run in a
chroot of its filesystem: migrate, serve, health, a delivery, the image's own health check.

The first run on a machine makes the base (mmdebstrap, about two minutes) and downloads the
dependencies; later runs reuse both (see tests/e2e/image.py)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from svix.api import ApplicationIn, EndpointIn, MessageIn, Svix, SvixOptions

from tests.e2e import image
from tests.support.procs import free_port
from tests.support.receivers import Receiver, ok
from tests.support.server import SECRET_KEY

# Asks xdist to keep the image's tests on one worker (`make test` runs two); should they
# still be split, image.build_image holds a lock, so a second build waits and finds its
# layers cached.
pytestmark = pytest.mark.xdist_group("image")

TOKEN = "pb_image_test_token"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    missing = image.missing_tools()
    assert not missing, f"{missing} not installed: `make test` installs them (apt-get)"
    started = time.monotonic()
    name = image.build_image(image.base_image())
    print(f"image ready in {time.monotonic() - started:.1f}s")
    return image.inspect(name)


@pytest.fixture
def rootfs(built: dict[str, Any]) -> Iterator[image.Rootfs]:
    fs = image.Rootfs.create(image.IMAGE)
    try:
        yield fs
    finally:
        fs.remove()


def test_the_image_is_described_as_the_dockerfile_says(built: dict[str, Any]) -> None:
    config = built["Config"]
    uid, _, gid = config["User"].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit(), config["User"]
    assert config["Entrypoint"] == ["postback"]
    assert config["Cmd"] == ["serve"]
    assert "8000/tcp" in config["ExposedPorts"]
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["POSTBACK_HOST"] == "0.0.0.0" and env["POSTBACK_PORT"] == "8000"
    assert env["POSTBACK_DATABASE_URL"].startswith("sqlite:////var/lib/postback/")
    check = image.healthcheck(built)["Test"]
    assert check[0] == "CMD" and "healthcheck.py" in " ".join(check)
    # Slim: the build stage's compiler-free virtualenv is all that is added to the base.
    added = built["Size"] - image.inspect(image.base_image())["Size"]
    assert added < 250_000_000, added


def _stat_uid(fs: image.Rootfs, path: str) -> int:
    out = subprocess.run(
        fs.command(["python3", "-c", f"import os; print(os.stat({path!r}).st_uid)"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_migrate_then_serve_from_the_image(rootfs: image.Rootfs, tmp_path: Any) -> None:
    done = subprocess.run(
        rootfs.command(rootfs.entrypoint("migrate")), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "database is up to date" in done.stdout
    uid = int(rootfs.config["User"].split(":")[0])
    assert _stat_uid(rootfs, "/var/lib/postback/postback.db") == uid  # not root's
    # The filesystem diff sees what a process writes (the other test counts on it).
    assert "/var/lib/postback/postback.db" in image.changes(rootfs.container)

    port = free_port()
    # Loopback rather than the image's 0.0.0.0: this chroot shares the machine's network.
    env = {
        "POSTBACK_HOST": "127.0.0.1",
        "POSTBACK_PORT": str(port),
        "POSTBACK_ADMIN_TOKEN": TOKEN,
        "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver is on 127.0.0.1
    }
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        rootfs.command(rootfs.entrypoint(*rootfs.config["Cmd"]), env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    health_check = rootfs.command(rootfs.healthcheck(), env)
    try:
        _wait_healthy(url, serve, tmp_path / "serve.log")
        # The process is the image's user, inside the image's filesystem.
        status = open(f"/proc/{serve.pid}/status").read()  # noqa: SIM115
        assert f"Uid:\t{uid}\t" in status
        # The wheel carried the web UI's templates and static files.
        assert "<form" in httpx.get(url + "/dashboard/login").text
        assert httpx.get(url + "/static/postback.css").status_code == 200
        # The image's HEALTHCHECK command, run where the image would run it.
        assert subprocess.run(health_check, capture_output=True, timeout=60).returncode == 0
        _deliver_one(url)
    finally:
        serve.terminate()
        code = serve.wait(30)
        log.close()
    output = (tmp_path / "serve.log").read_text(errors="replace")
    assert code == 0, output
    assert '"level": "info"' in output or '"level":"info"' in output  # the image logs JSON
    # With nothing listening, the same check fails.
    assert subprocess.run(health_check, capture_output=True, timeout=60).returncode == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_api_and_worker_from_the_image_on_postgresql_write_nothing_to_it(
    rootfs: image.Rootfs, database_url: str, tmp_path: Any
) -> None:
    """The many-process shape from the image: `migrate`, `api` and `worker` on PostgreSQL
    deliver, and leave the container's filesystem as the image made it, so the Kubernetes
    manifests' readOnlyRootFilesystem holds."""
    port, metrics = free_port(), free_port()
    env = {
        "POSTBACK_DATABASE_URL": database_url,
        "POSTBACK_SECRET_KEY": SECRET_KEY,
        "POSTBACK_ADMIN_TOKEN": TOKEN,
        "POSTBACK_HOST": "127.0.0.1",
        "POSTBACK_PORT": str(port),
        "POSTBACK_WORKER_METRICS_PORT": str(metrics),
        "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",
    }
    done = subprocess.run(
        rootfs.command(rootfs.entrypoint("migrate"), env), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    procs = {}
    for name in ("api", "worker"):
        log = (tmp_path / f"{name}.log").open("wb")
        procs[name] = subprocess.Popen(
            rootfs.command(rootfs.entrypoint(name), env), stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, procs["api"], tmp_path / "api.log")
        _deliver_one(url)
        # The worker's own health check, as the compose file and the manifests ask it.
        check = rootfs.command(
            ["python3", "/opt/postback/healthcheck.py", str(metrics), "/metrics"]
        )
        assert subprocess.run(check, capture_output=True, timeout=60).returncode == 0
    finally:
        codes = {}
        for name, proc in procs.items():
            proc.terminate()
            codes[name] = proc.wait(30)
    logs = {n: (tmp_path / f"{n}.log").read_text(errors="replace") for n in procs}
    assert codes == {"api": 0, "worker": 0}, logs
    assert image.changes(rootfs.container) == [], logs


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 204:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not healthy in {timeout}s:\n{log.read_text(errors='replace')}")


def _deliver_one(url: str) -> None:
    svix = Svix(TOKEN, SvixOptions(server_url=url, retry_schedule=[], timeout=10))
    with Receiver() as receiver:
        app = svix.application.create(ApplicationIn(name="shop"))
        hook = receiver.route("/hook", ok())
        svix.endpoint.create(app.id, EndpointIn(url=hook, secret=SECRET))
        msg = svix.message.create(app.id, MessageIn(event_type="order.paid", payload={"n": 1}))
        (got,) = receiver.wait_for(1, "/hook", timeout=30)
    assert got.headers["webhook-id"] == msg.id
    Webhook(SECRET).verify(got.body, got.headers)  # signed with the key sealed in the image
