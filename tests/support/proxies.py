"""Real forward proxies for the egress tests: pproxy (PyPI) in a process of its own, an HTTP
proxy (CONNECT and absolute URIs) and a SOCKS5 one on loopback ports, logging each
connection it makes so a test can tell what went through it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

# pproxy installs uvloop when it can, and then fails to find an event loop on Python 3.11:
# it is run with uvloop hidden.
_MAIN = 'import sys; sys.modules["uvloop"] = None; from pproxy.server import main; main()'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ForwardProxy:
    """``kind`` is http or socks5; ``auth`` "user:pass" makes the proxy ask for it."""

    def __init__(self, log_dir: Path, kind: str = "http", auth: str | None = None) -> None:
        self.kind = kind
        self.port = free_port()
        self.log = log_dir / f"pproxy-{kind}-{self.port}.log"
        listen = f"{kind}://127.0.0.1:{self.port}" + (f"#{auth}" if auth else "")
        self._args = [sys.executable, "-W", "ignore", "-c", _MAIN, "-l", listen, "-v"]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.kind}://127.0.0.1:{self.port}"

    def start(self) -> ForwardProxy:
        self._out = self.log.open("wb")
        self._process = subprocess.Popen(self._args, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return self
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"pproxy did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        self._out.close()

    def connections(self) -> list[str]:
        """The destinations the proxy connected to, as host:port, in order."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [ln.rsplit(" -> ", 1)[1].strip() for ln in lines if " -> " in ln]

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
