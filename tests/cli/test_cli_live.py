"""The live commands, run as real subprocesses: `postback tail` following attempts and
`postback listen` receiving real deliveries from postback."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import (
    POSTBACK,
    SECRET,
    at_least,
    env_for,
    ok_json,
    pb,
    wait_text,
)
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle

# The CLI talks HTTP; which database is behind the server does not change what it does.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# ---- tail ----------------------------------------------------------------------------


def test_tail_follows_new_attempts(
    server: ServerHandle, app_id: str, receiver: Receiver, tmp_path: Path
) -> None:
    ok_json(server, "endpoint", "create", app_id, receiver.route("/good", ok()))
    ok_json(server, "endpoint", "create", app_id, receiver.route("/bad", fail(500)))
    # An attempt from before the tail starts is not shown.
    assert pb(server, "send", app_id, "order.paid", '{"old": true}').returncode == 0
    receiver.wait_for(1, "/good")
    time.sleep(0.3)
    out, err = tmp_path / "tail.out", tmp_path / "tail.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        tail = subprocess.Popen(
            [POSTBACK, "tail", app_id, "--interval", "0.1", "--count", "2", "--seconds", "30"],
            stdout=stdout,
            stderr=stderr,
            env=env_for(server, FORCE_COLOR="1", NO_COLOR=""),
        )
        try:
            wait_text(err, "following 2 endpoint(s)")
            msg = ok_json(server, "send", app_id, "order.paid", '{"new": true}')["id"]
            assert tail.wait(timeout=30) == 0
        finally:
            tail.kill()
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and all(msg in line for line in lines)
    good = next(line for line in lines if "/good" in line)
    bad = next(line for line in lines if "/bad" in line)
    assert "\x1b[32m" in good and "200" in good  # green
    assert "\x1b[31m" in bad and "500" in bad  # red


def test_tail_json_lines(server: ServerHandle, app_id: str, receiver: Receiver) -> None:
    ep = ok_json(server, "endpoint", "create", app_id, receiver.route("/j", ok()))["id"]
    tail = subprocess.Popen(
        [POSTBACK, "tail", app_id, "--endpoint", ep, "--json", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(server),
    )
    try:
        assert "following 1 endpoint(s)" in tail.stderr.readline()  # type: ignore[union-attr]
        msg = ok_json(server, "send", app_id, "order.paid", '{"j": 1}')["id"]
        line = tail.stdout.readline()  # type: ignore[union-attr]
        attempt = json.loads(line)
        assert (attempt["msgId"], attempt["endpointId"]) == (msg, ep)
        assert attempt["responseStatusCode"] == 200
    finally:
        tail.terminate()
        tail.wait(10)


# ---- listen --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def listen(tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[str, Path]:
        port = _free_port()
        out = tmp_path / f"listen-{port}.out"
        with out.open("w") as stdout:
            proc = subprocess.Popen(
                [POSTBACK, "listen", "--port", str(port), *args],
                stdout=stdout,
                stderr=subprocess.STDOUT,
                env=env_for(None),
            )
        started.append(proc)
        wait_text(out, "listening on")
        return f"http://127.0.0.1:{port}", out

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)


def test_listen_verifies_and_prints_a_real_delivery(
    server: ServerHandle, app_id: str, listen: Callable[..., tuple[str, Path]]
) -> None:
    url, out = listen("--secret", SECRET)
    ep = ok_json(server, "endpoint", "create", app_id, url + "/hook", "--secret", SECRET)["id"]
    msg = ok_json(server, "send", app_id, "invoice.paid", '{"invoice": "inv_42", "cents": 990}')
    text = wait_text(out, "answered 200")
    assert "POST /hook" in text and f"id {msg['id']}" in text
    assert "signature OK" in text
    assert '"invoice": "inv_42"' in text and '"cents": 990' in text  # pretty-printed JSON
    attempts = eventually(lambda: ok_json(server, "attempts", app_id, "--endpoint", ep))
    assert attempts[0]["responseStatusCode"] == 200
    # A forged request is refused and shown as such.
    body = b'{"invoice": "forged"}'
    headers = {
        "webhook-id": "msg_forged",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + "A" * 44,
    }
    forged = urllib.request.Request(url + "/hook", data=body, headers=headers, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    assert refused.value.code == 401
    assert "REJECTED: no signature matches" in wait_text(out, "answered 401")


def test_listen_answers_the_chosen_status_so_postback_retries(
    server: ServerHandle, app_id: str, listen: Callable[..., tuple[str, Path]]
) -> None:
    url, out = listen("--secret", SECRET, "--status", "503")
    ep = ok_json(server, "endpoint", "create", app_id, url, "--secret", SECRET)["id"]
    ok_json(server, "send", app_id, "invoice.paid", '{"retry": "me"}')
    # The test server's schedule retries after 0.05 s and 0.1 s: three attempts in all.
    attempts = eventually(
        lambda: at_least(ok_json(server, "attempts", app_id, "--endpoint", ep), 3)
    )
    assert {a["responseStatusCode"] for a in attempts} == {503}
    assert out.read_text().count("answered 503") >= 3
    assert "signature OK" in out.read_text()


def test_listen_refuses_a_bad_secret(database_url: str) -> None:
    done = subprocess.run(
        [POSTBACK, "listen", "--port", str(_free_port()), "--secret", "whsec_!!"],
        capture_output=True,
        text=True,
        env=env_for(None),
        timeout=30,
    )
    assert done.returncode == 2 and "unusable webhook secret" in done.stdout
