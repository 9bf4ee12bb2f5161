"""Running postback's commands as real processes in tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.polling import NotYet, eventually
from tests.support.server import SECRET_KEY

POSTBACK = [sys.executable, "-m", "postback.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBACK_")}
    env |= {
        "POSTBACK_DATABASE_URL": database_url,
        "POSTBACK_RETRY_SCHEDULE": "0.1,0.2",
        "POSTBACK_POLL_INTERVAL": "0.2",
        "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",
        # PostgreSQL processes must share a key; SQLite generates its key file.
        **({} if database_url.startswith("sqlite") else {"POSTBACK_SECRET_KEY": SECRET_KEY}),
        **extra,
    }
    return env


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.log = cwd / f"proc-{time.monotonic_ns()}.log"
        self._out = self.log.open("wb")
        self.popen = subprocess.Popen(
            POSTBACK + args, env=env, cwd=cwd, stdout=self._out, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
            self._out.close()


def wait_healthy(url: str, proc: Proc, timeout: float = 60) -> None:
    def healthy() -> bool:
        assert proc.popen.poll() is None, proc.output()  # it exited: fail at once
        return httpx.get(url + "/api/v1/health", timeout=1).status_code == 204

    try:
        eventually(healthy, timeout, interval=0.1, retry_on=(httpx.HTTPError,))
    except NotYet as exc:
        raise AssertionError(f"{exc}\n{proc.output()}") from None
