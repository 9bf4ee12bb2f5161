"""Egress through real proxies (pproxy, HTTP and SOCKS5, in processes of their own): what goes
through them, the SSRF guard in front of them, and their failures recorded as proxy errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import standardwebhooks
from aiohttp.abc import AbstractResolver, ResolveResult

from postback.delivery.egress import NoProxy
from postback.delivery.scheduler import Outcome, classify
from postback.delivery.sender import Sender
from postback.delivery.ssrf import NetworkPolicy, parse_networks
from postback.domain import ClaimedDelivery, TriggerType
from postback.signing import decode_secret, generate_secret
from tests.support.proxies import ForwardProxy, free_port
from tests.support.receivers import Receiver, ok

SECRET = generate_secret()
# The receivers and the proxies live on 127.0.0.1: the tests allow that address alone, so
# the guard still refuses the rest of loopback (127.0.0.2 is the "private" target).
ONLY_LOCALHOST = NetworkPolicy(allowed=parse_networks("127.0.0.1/32"))


class StaticResolver(AbstractResolver):
    """A DNS stand-in: names from a table (no DNS server can be run here)."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.table:
            raise OSError(f"no such name {host}")
        addr = self.table[host]
        return [{"hostname": host, "host": addr, "port": port, "family": 2, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        r.route("/hook", ok(200, "thanks"))
        yield r


@pytest.fixture
def http_proxy(tmp_path: Path) -> Iterator[ForwardProxy]:
    with ForwardProxy(tmp_path, "http") as proxy:
        yield proxy


@pytest.fixture
def socks_proxy(tmp_path: Path) -> Iterator[ForwardProxy]:
    with ForwardProxy(tmp_path, "socks5") as proxy:
        yield proxy


def _delivery(url: str) -> ClaimedDelivery:
    return ClaimedDelivery(
        delivery_id="dlv_1",
        lease="l",
        msg_id="msg_1",
        app_id="app_1",
        endpoint_id="ep_1",
        url=url,
        secrets=(decode_secret(SECRET),),
        headers={},
        payload=b'{"a":1}',
        attempt_count=0,
        trigger=TriggerType.SCHEDULED,
    )


def _port(url: str) -> str:
    return url.split("//", 1)[1].split("/", 1)[0]


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_deliveries_go_through_the_proxy(
    kind: str, receiver: Receiver, http_proxy: ForwardProxy, socks_proxy: ForwardProxy
) -> None:
    proxy = http_proxy if kind == "http" else socks_proxy
    url = receiver.url + "/hook"
    async with Sender(timeout=5, policy=ONLY_LOCALHOST, egress_proxy=proxy.url) as sender:
        result = await sender.send(_delivery(url))
    assert result.ok and result.response == "thanks", result.error
    assert proxy.connections() == [_port(url)]  # the proxy made the connection
    (got,) = receiver.received("/hook")
    assert standardwebhooks.Webhook(SECRET).verify(got.body, got.headers) is not None


async def test_socks5h_lets_the_proxy_resolve_after_the_check(
    receiver: Receiver, socks_proxy: ForwardProxy
) -> None:
    url = receiver.url.replace("127.0.0.1", "localhost") + "/hook"
    resolver = StaticResolver({"localhost": "127.0.0.1"})
    proxy_url = socks_proxy.url.replace("socks5:", "socks5h:")
    async with Sender(
        timeout=5, policy=ONLY_LOCALHOST, egress_proxy=proxy_url, resolver=resolver
    ) as sender:
        result = await sender.send(_delivery(url))
    assert result.ok, result.error
    assert socks_proxy.connections() == [_port(url)]  # the name went to the proxy


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_a_refused_target_never_reaches_the_proxy(
    kind: str, receiver: Receiver, http_proxy: ForwardProxy, socks_proxy: ForwardProxy
) -> None:
    proxy = http_proxy if kind == "http" else socks_proxy
    port = receiver.url.rsplit(":", 1)[1]
    resolver = StaticResolver({"inside.test": "127.0.0.2", "meta.test": "169.254.169.254"})
    async with Sender(
        timeout=5, policy=ONLY_LOCALHOST, egress_proxy=proxy.url, resolver=resolver
    ) as sender:
        literal = await sender.send(_delivery(f"http://127.0.0.2:{port}/hook"))
        named = await sender.send(_delivery(f"http://inside.test:{port}/hook"))
        metadata = await sender.send(_delivery("http://meta.test/latest/meta-data"))
        unknown = await sender.send(_delivery(f"http://nowhere.test:{port}/hook"))
    assert "127.0.0.2, a non-public address (SSRF guard)" in (literal.error or "")
    assert "inside.test resolves to 127.0.0.2" in (named.error or "")
    assert "not sent through the proxy" in (named.error or "")
    assert "169.254.169.254" in (metadata.error or "")
    assert "does not resolve here" in (unknown.error or "")
    assert proxy.connections() == []  # the proxy was never asked
    assert receiver.received() == []


async def test_denied_networks_hold_through_the_proxy(
    receiver: Receiver, http_proxy: ForwardProxy
) -> None:
    policy = NetworkPolicy(denied=parse_networks("127.0.0.1/32"), allow_private=True)
    async with Sender(timeout=5, policy=policy, egress_proxy=http_proxy.url) as sender:
        result = await sender.send(_delivery(receiver.url + "/hook"))
    assert "in POSTBACK_DENIED_NETWORKS (SSRF guard)" in (result.error or "")
    assert http_proxy.connections() == []


async def test_no_proxy_hosts_go_direct(receiver: Receiver, http_proxy: ForwardProxy) -> None:
    async with Sender(
        timeout=5,
        policy=ONLY_LOCALHOST,
        egress_proxy=http_proxy.url,
        egress_no_proxy="hooks.internal, 127.0.0.0/8",
    ) as sender:
        result = await sender.send(_delivery(receiver.url + "/hook"))
    assert result.ok
    assert http_proxy.connections() == []
    assert len(receiver.received("/hook")) == 1


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_a_dead_proxy_is_a_proxy_error_not_the_receivers(
    kind: str, receiver: Receiver
) -> None:
    dead = f"{kind}://127.0.0.1:{free_port()}"  # nothing listens there
    async with Sender(timeout=5, policy=ONLY_LOCALHOST, egress_proxy=dead) as sender:
        result = await sender.send(_delivery(receiver.url + "/hook"))
    assert result.status_code == 0
    assert (result.error or "").startswith("proxy error:"), result.error
    assert "127.0.0.1:" in (result.error or "")
    assert result.fault == "proxy"
    assert classify(result) is Outcome.NEUTRAL  # the breaker learns nothing from it
    assert receiver.received() == []


async def test_proxy_credentials(receiver: Receiver, tmp_path: Path) -> None:
    with ForwardProxy(tmp_path, "http", auth="shop:s3cret") as proxy:
        good = proxy.url.replace("http://", "http://shop:s3cret@")
        bad = proxy.url.replace("http://", "http://shop:wrong@")
        # The wrong ones first: pproxy lets an address that once authenticated in for a while.
        async with Sender(timeout=5, policy=ONLY_LOCALHOST, egress_proxy=bad) as sender:
            refused = await sender.send(_delivery(receiver.url + "/hook"))
        async with Sender(timeout=5, policy=ONLY_LOCALHOST, egress_proxy=good) as sender:
            accepted = await sender.send(_delivery(receiver.url + "/hook"))
    assert accepted.ok, accepted.error
    assert refused.fault == "proxy" and "407" in (refused.error or "")
    assert "s3cret" not in (refused.error or "") and "wrong" not in (refused.error or "")
    assert len(receiver.received("/hook")) == 1


async def test_a_receiver_down_behind_the_proxy_is_the_receivers_failure(
    http_proxy: ForwardProxy, socks_proxy: ForwardProxy
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hook"
    for proxy in (http_proxy, socks_proxy):
        async with Sender(timeout=5, policy=ONLY_LOCALHOST, egress_proxy=proxy.url) as sender:
            result = await sender.send(_delivery(closed))
        assert not result.ok and result.fault is None, (proxy.kind, result)
        assert classify(result) is Outcome.FAILED


def test_no_proxy_matching() -> None:
    rules = NoProxy("hooks.internal, .corp.example, 10.0.0.0/8, ::1")
    assert rules.bypass("hooks.internal") and rules.bypass("a.hooks.internal")
    assert rules.bypass("x.corp.example") and not rules.bypass("corp.example")
    assert rules.bypass("10.1.2.3") and rules.bypass("[::1]")
    assert not rules.bypass("shop.example.com") and not rules.bypass("11.0.0.1")
    assert NoProxy("*").bypass("anything.example")
