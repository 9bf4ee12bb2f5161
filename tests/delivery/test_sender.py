"""One delivery attempt against real loopback receivers: bytes, headers, limits, failures."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import standardwebhooks

from postback.delivery.sender import Sender
from postback.domain import ClaimedDelivery, TriggerType
from postback.signing import decode_secret, generate_secret
from tests.support.receivers import Receiver, big_body, fail, hang, ok

SECRET = generate_secret()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _delivery(url: str, body: bytes = b'{"a":1}', headers: dict | None = None) -> ClaimedDelivery:
    return ClaimedDelivery(
        delivery_id="dlv_1",
        lease="l",
        msg_id="msg_1",
        app_id="app_1",
        endpoint_id="ep_1",
        url=url,
        secrets=(decode_secret(SECRET),),
        headers=headers or {},
        payload=body,
        attempt_count=0,
        trigger=TriggerType.SCHEDULED,
    )


def _sender(**kw: object) -> Sender:
    return Sender(timeout=2, allow_private_networks=True, **kw)  # type: ignore[arg-type]


async def test_exact_bytes_and_verifiable_headers(receiver: Receiver) -> None:
    body = '{"b":  [1, 2],"a":"ç"}'.encode()  # odd spacing: must arrive untouched
    url = receiver.route("/h", ok(204, ""))
    async with _sender() as sender:
        result = await sender.send(_delivery(url, body, {"X-Shop": "42", "Webhook-Id": "evil"}))
    assert result.ok and result.status_code == 204 and result.error is None
    (got,) = receiver.received("/h")
    assert got.body == body and got.headers["content-type"] == "application/json"
    assert got.headers["x-shop"] == "42"
    assert got.headers["webhook-id"] == "msg_1"  # a custom header cannot replace ours
    assert standardwebhooks.Webhook(SECRET).verify(got.body, got.headers) is not None


async def test_failure_status_and_truncated_response(receiver: Receiver) -> None:
    async with _sender(response_max_bytes=100) as sender:
        failed = await sender.send(_delivery(receiver.route("/f", fail(503, "busy"))))
        big = await sender.send(_delivery(receiver.route("/big", big_body(1_000_000))))
    assert failed.status_code == 503 and not failed.ok and failed.response == "busy"
    assert big.ok and big.response == "x" * 100


async def test_timeout_is_bounded(receiver: Receiver) -> None:
    async with Sender(timeout=0.3, allow_private_networks=True) as sender:
        started = time.monotonic()
        result = await sender.send(_delivery(receiver.route("/slow", hang(5))))
    assert time.monotonic() - started < 2
    assert result.status_code == 0 and "timed out after 0.3 s" in (result.error or "")


async def test_connection_refused_is_a_result_not_an_exception() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nobody listens
    async with _sender() as sender:
        result = await sender.send(_delivery(f"http://127.0.0.1:{port}/x"))
    assert result.status_code == 0 and "connection failed" in (result.error or "")


async def test_connections_are_reused(receiver: Receiver) -> None:
    url = receiver.route("/k", ok())
    async with _sender() as sender:
        for _ in range(5):
            assert (await sender.send(_delivery(url))).ok
    ports = {r.peer_port for r in receiver.received("/k")}
    assert len(ports) == 1  # one keep-alive connection carried all five
