"""`make run` on a fresh checkout (issue 21, item 7): it installs what running needs and
nothing of the test extras, and the server answers in under 20 s when the package cache is
warm (as `make test` leaves it: it installs everything with the same uv first).

The checkout is a copy of the files `make run` reads (Makefile, pyproject.toml, README.md,
src/) in a temporary directory, with its own virtualenv; the repository's is not touched."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
FIRST_START_SECONDS = 20
# Installed by `make test` (the [test] extra), never by `make run`.
TEST_ONLY = ("pytest", "playwright", "schemathesis", "hypothesis", "ruff", "pgserver", "flask")
RUNTIME = ("fastapi", "uvicorn", "sqlalchemy", "aiosqlite", "asyncpg", "jinja2", "typer")


def _uv() -> str:
    """The uv `make test` used: on the PATH, or the one it fetched into .cache/tools."""
    found = shutil.which("uv") or str(ROOT / ".cache" / "tools" / "bin" / "uv")
    if not os.access(found, os.X_OK):
        pytest.skip("no uv: `make test` fetches it into .cache/tools before the suite runs")
    return found


def _checkout(into: Path) -> Path:
    repo = into / "checkout"
    repo.mkdir()
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, repo / name)
    fresh = shutil.ignore_patterns("__pycache__", "*.egg-info")  # as git checks it out
    shutil.copytree(ROOT / "src", repo / "src", ignore=fresh)
    return repo


def _installed(python: Path) -> set[str]:
    listing = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m;"
         "print('\\n'.join(d.metadata['Name'].lower() for d in m.distributions()))"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return set(listing.stdout.split())


def test_make_run_installs_only_what_running_needs_and_answers_within_20_s(
    tmp_path: Path,
) -> None:
    repo, port = _checkout(tmp_path), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTBACK_", "VIRTUAL_ENV"))}
    env |= {
        "POSTBACK_PORT": str(port),
        "POSTBACK_DATABASE_URL": f"sqlite:///{tmp_path / 'postback.db'}",
        "POSTBACK_ADMIN_TOKEN": "pb_first_start_token",
    }
    log = (tmp_path / "make-run.log").open("w")
    started = time.monotonic()
    make = subprocess.Popen(
        ["make", "run", f"UV={_uv()}"],
        cwd=repo,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make, the installer and the server: one group to stop
    )
    answered = None
    try:
        while time.monotonic() - started < 120 and make.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).is_success:
                    answered = time.monotonic() - started
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(30)
        log.close()
    said = (tmp_path / "make-run.log").read_text()
    assert answered is not None, f"`make run` never answered:\n{said[-3000:]}"
    print(f"make run: answering after {answered:.1f} s")
    assert answered < FIRST_START_SECONDS, f"first start took {answered:.1f} s:\n{said[-3000:]}"

    packages = _installed(repo / ".venv" / "bin" / "python")
    assert set(RUNTIME) <= packages, set(RUNTIME) - packages
    assert packages.isdisjoint(TEST_ONLY), packages & set(TEST_ONLY)
    # What `make run` printed: the server's own start, nothing of a test install.
    assert f"listening on http://127.0.0.1:{port}" in said
