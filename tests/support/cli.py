"""Running the real `postback` command against a test server: the environment and helpers
the CLI test modules share (their fixtures are in tests/cli/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from postback import signing
from tests.support.polling import eventually
from tests.support.server import ServerHandle

POSTBACK = str(Path(sys.executable).with_name("postback"))
SECRET = signing.encode_secret(b"s" * 24)


def env_for(server: ServerHandle | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    env |= {"COLUMNS": "250", "NO_COLOR": "1"}
    if server is not None:
        env |= {"POSTBACK_URL": server.url, "POSTBACK_TOKEN": server.token}
    return env | extra


def pb(
    server: ServerHandle | None, *args: str, stdin: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [POSTBACK, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env_for(server, **extra),
        timeout=60,
    )


def ok_json(server: ServerHandle, *args: str, **kw: Any) -> Any:
    done = pb(server, *args, "--json", **kw)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def succeeded_with(done: subprocess.CompletedProcess[str], text: str) -> Any:
    return done if done.returncode == 0 and text in done.stdout else None


def at_least(rows: list[dict], n: int) -> list[dict] | None:
    return rows if len(rows) >= n else None


def wait_text(path: Path, text: str, timeout: float = 30) -> str:
    return eventually(lambda: text in path.read_text() and path.read_text(), timeout, what=text)
