"""`postback serve` against hostile clients on real sockets: huge headers, many headers,
trickled headers and idle connections are cut off within their bounds, and memory does not
grow with what they send (issue 18, finding 6)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import Proc, env_for, free_port, wait_healthy

HEADER_TIMEOUT = 2.0
KEEP_ALIVE = 1.0
SLACK = 3.0  # a busy machine may run the server's timers late


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Proc]]:
    tmp: Path = tmp_path_factory.mktemp("limits")
    port = free_port()
    env = env_for(
        "sqlite:///./postback.db",
        POSTBACK_PORT=str(port),
        POSTBACK_ADMIN_TOKEN="pb_limits_token",
        POSTBACK_HEADER_TIMEOUT=f"{HEADER_TIMEOUT:g}s",
        POSTBACK_KEEP_ALIVE_TIMEOUT=f"{KEEP_ALIVE:g}s",
    )
    proc = Proc(["serve"], env, tmp)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield port, proc
    finally:
        assert proc.stop() == 0, proc.output()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """What the server says before it closes (or within the socket's timeout)."""
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
            if b"\r\n\r\n" in got and b"connection: close" not in got.lower():
                break  # a kept-alive response: do not wait for a close that is not coming
    except (ConnectionResetError, TimeoutError):
        pass
    return got


def _push(sock: socket.socket, data: bytes, chunk: int = 64 * 1024) -> bool:
    """Send ``data``; False when the server stopped taking it (closed on us)."""
    try:
        for i in range(0, len(data), chunk):
            sock.sendall(data[i : i + chunk])
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


HEAD = b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\n"


def _served(port: int, head: bytes = HEAD) -> bytes:
    with _connect(port) as sock:
        sock.sendall(head + b"\r\n")
        return _answer(sock)


def test_ordinary_requests_are_served(server: tuple[int, Proc]) -> None:
    port, _ = server
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(60))
    big = b"x-big: " + b"a" * 20_000 + b"\r\n"
    for head in (HEAD, HEAD + many, HEAD + big):
        assert _served(port, head).startswith(b"HTTP/1.1 204"), head[:60]


def test_an_oversized_header_gets_431(server: tuple[int, Proc]) -> None:
    port, _ = server
    with _connect(port) as sock:
        sock.sendall(HEAD + b"x-big: " + b"a" * (100 * 1024))  # unterminated, then silence
        assert _answer(sock).startswith(b"HTTP/1.1 431")


def test_an_8_mb_header_is_refused_without_reading_it(server: tuple[int, Proc]) -> None:
    port, _ = server
    with _connect(port) as sock:
        taken = _push(sock, HEAD + b"x-big: " + b"a" * (8 << 20) + b"\r\n\r\n")
        answer = _answer(sock)
    assert not taken or answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert not answer.startswith(b"HTTP/1.1 2")
    assert _served(port).startswith(b"HTTP/1.1 204")  # the server is fine


def test_too_many_headers_get_431(server: tuple[int, Proc]) -> None:
    port, _ = server
    with _connect(port) as sock:
        sock.sendall(HEAD + b"".join(b"x-h%d: v\r\n" % i for i in range(150)) + b"\r\n")
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431") and b"too many headers" in answer
    with _connect(port) as sock:
        taken = _push(sock, HEAD + b"".join(b"x-h%d: v\r\n" % i for i in range(20_000)) + b"\r\n")
        answer = _answer(sock)
    assert not taken or answer.startswith(b"HTTP/1.1 431"), answer[:80]


def test_a_trickling_client_is_cut_off_within_the_header_timeout(
    server: tuple[int, Proc],
) -> None:
    port, _ = server
    with _connect(port) as sock:
        started = time.monotonic()
        sock.sendall(HEAD)
        closed_at = None
        for i in range(int((HEADER_TIMEOUT + SLACK) / 0.2) + 1):
            if not _push(sock, b"x-t%d: v\r\n" % i):
                closed_at = time.monotonic()
                break
            sock.settimeout(0.2)
            try:
                sock.recv(65536)  # a 408, or the close itself
            except TimeoutError:
                continue
            closed_at = time.monotonic()
            break
        assert closed_at is not None, "still open past the header timeout"
        assert closed_at - started < HEADER_TIMEOUT + SLACK


@pytest.mark.parametrize("say_something", [False, True])
def test_silent_and_idle_connections_are_closed(
    server: tuple[int, Proc], say_something: bool
) -> None:
    """A connection that never sends a request is closed after the header timeout; one
    kept alive after a response, after the keep-alive timeout."""
    port, _ = server
    with _connect(port) as sock:
        bound = HEADER_TIMEOUT
        if say_something:
            sock.sendall(HEAD + b"\r\n")
            assert _answer(sock).startswith(b"HTTP/1.1 204")
            bound = KEEP_ALIVE
        started = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the server, within the socket timeout
        assert time.monotonic() - started < bound + SLACK


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_unterminated_32_mb_headers_do_not_grow_memory(server: tuple[int, Proc]) -> None:
    port, proc = server
    before = _rss_mb(proc.popen.pid)
    socks = [_connect(port) for _ in range(4)]
    try:
        block = b"a" * (1 << 20)
        for sock in socks:
            sock.sendall(HEAD + b"x-big: ")
        for _ in range(32):
            for sock in socks:
                _push(sock, block)
        grown = _rss_mb(proc.popen.pid) - before
    finally:
        for sock in socks:
            sock.close()
    assert grown < 40, f"RSS grew by {grown:.0f} MB"
    assert _served(port).startswith(b"HTTP/1.1 204")
