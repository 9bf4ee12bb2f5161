"""`postback serve` starting up as a real process: the port is taken before anything else, the
configured admin token is never printed, and the SQLite files are private to their owner
(issue 18, finding 13)."""

from __future__ import annotations

import socket
import stat
import subprocess
from pathlib import Path

import httpx

from postback.store.engine import create_engine
from tests.support.procs import POSTBACK, Proc, env_for, free_port, wait_healthy


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_busy_port_stops_serve_before_it_prints_a_token_or_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = env_for("sqlite:///./postback.db", POSTBACK_PORT=str(port))
        done = subprocess.run(
            [*POSTBACK, "serve"], env=env, cwd=tmp_path, capture_output=True, timeout=60
        )
    out = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 1, out
    assert "cannot listen" in out and str(port) in out
    assert "pb_" not in out and "listening" not in out and "worker started" not in out
    # Nothing was started: no database was created, so no token either.
    assert not (tmp_path / "postback.db").exists()


def test_serve_never_prints_the_configured_admin_token(tmp_path: Path) -> None:
    port, token = free_port(), "pb_configured_admin_token_4f2a"
    env = env_for("sqlite:///./postback.db", POSTBACK_PORT=str(port), POSTBACK_ADMIN_TOKEN=token)
    proc = Proc(["serve"], env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        answer = httpx.get(url + "/api/v1/app", headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        # While it runs, the database and its WAL files are its owner's alone.
        for name in ("postback.db", "postback.db-wal", "postback.db-shm", "postback.key"):
            assert _mode(tmp_path / name) == 0o600, name
    finally:
        assert proc.stop() == 0, proc.output()
    out = proc.output()
    assert token not in out
    assert "POSTBACK_ADMIN_TOKEN installed" in out
    assert f"listening on http://127.0.0.1:{port}" in out


def test_a_new_sqlite_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    create_engine(f"sqlite:///{path}")
    assert _mode(path) == 0o600
    # An existing file keeps the mode its owner chose.
    shared = tmp_path / "shared.db"
    shared.touch(mode=0o640)
    shared.chmod(0o640)
    create_engine(f"sqlite:///{shared}")
    assert _mode(shared) == 0o640
