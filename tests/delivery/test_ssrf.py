"""The SSRF guard: literal addresses in every form, resolvers that answer private addresses,
and the public/non-public classification."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import given
from hypothesis import strategies as st

from postback.api.wire.common import check_url
from postback.delivery.sender import Sender
from postback.delivery.ssrf import GuardedResolver, is_public, literal_address
from postback.domain import ClaimedDelivery, TriggerType
from tests.support.receivers import Receiver, ok


class StaticResolver(AbstractResolver):
    """Answers from a table: stands in for DNS, which cannot be run here."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addr = self.table[host]
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        return [
            {"hostname": host, "host": addr, "port": port, "family": fam, "proto": 0, "flags": 0}
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        r.route("/hook", ok())
        yield r


def _delivery(url: str) -> ClaimedDelivery:
    return ClaimedDelivery(
        delivery_id="dlv_x",
        lease="l",
        msg_id="msg_x",
        app_id="app_x",
        endpoint_id="ep_x",
        url=url,
        secrets=(b"k" * 32,),
        headers={},
        payload=b"{}",
        attempt_count=0,
        trigger=TriggerType.SCHEDULED,
    )


LOOPBACK_FORMS = [
    "127.0.0.1",
    "2130706433",  # decimal
    "0x7f.1",  # hex, short form
    "0x7f000001",
    "017700000001",  # octal
    "127.1",
    "[::ffff:127.0.0.1]",  # IPv6-mapped IPv4
    "[::ffff:7f00:1]",
    "[::1]",
]


@pytest.mark.parametrize("host", LOOPBACK_FORMS)
async def test_literal_loopback_in_every_form_is_refused(host: str, receiver: Receiver) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    async with Sender(timeout=2) as sender:
        result = await sender.send(_delivery(f"http://{host}:{port}/hook"))
    assert result.status_code == 0 and not result.ok
    assert "SSRF" in (result.error or "") and "non-public" in (result.error or "")
    assert receiver.received() == []


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "[fe80::1]",
        "[fc00::1]",
        "0.0.0.0",
        "224.0.0.1",
        "100.64.0.1",
        "[64:ff9b::a00:1]",
        "[2002:7f00:1::]",
    ],
)
async def test_private_link_local_and_special_literals_are_refused(host: str) -> None:
    async with Sender(timeout=2) as sender:
        result = await sender.send(_delivery(f"http://{host}/hook"))
    assert result.status_code == 0 and "SSRF" in (result.error or "")


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time(
    receiver: Receiver,
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    resolver = StaticResolver({"rebind.test": "127.0.0.1"})
    url = f"http://rebind.test:{port}/hook"
    async with Sender(timeout=2, resolver=resolver) as sender:
        refused = await sender.send(_delivery(url))
    assert refused.status_code == 0 and "rebind.test resolves to 127.0.0.1" in (refused.error or "")
    assert receiver.received() == []
    # The same resolver with the guard lifted reaches the receiver: the guard is what refused.
    async with Sender(timeout=2, resolver=resolver, allow_private_networks=True) as sender:
        allowed = await sender.send(_delivery(url))
    assert allowed.status_code == 200 and len(receiver.received("/hook")) == 1


async def test_guarded_resolver_passes_public_answers() -> None:
    guard = GuardedResolver(StaticResolver({"shop.test": "93.184.216.34"}))
    (answer,) = await guard.resolve("shop.test", 443)
    assert answer["host"] == "93.184.216.34"
    with pytest.raises(OSError, match="non-public"):
        await GuardedResolver(StaticResolver({"meta.test": "169.254.169.254"})).resolve("meta.test")


@given(
    st.ip_addresses(v=4, network="10.0.0.0/8")
    | st.ip_addresses(v=4, network="192.168.0.0/16")
    | st.ip_addresses(v=4, network="172.16.0.0/12")
    | st.ip_addresses(v=4, network="127.0.0.0/8")
    | st.ip_addresses(v=4, network="169.254.0.0/16")
    | st.ip_addresses(v=6, network="fc00::/7")
    | st.ip_addresses(v=6, network="fe80::/10")
)
def test_private_ranges_are_never_public(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assert not is_public(addr)
    if addr.version == 4:
        assert not is_public(ipaddress.IPv6Address(f"::ffff:{addr}"))
        assert literal_address(str(int(addr))) == addr  # the decimal form is seen through


def test_public_addresses_are_public() -> None:
    for text in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"):
        assert is_public(ipaddress.ip_address(text))
    assert literal_address("shop.example.com") is None


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){1,2}", fullmatch=True),
    path=st.from_regex(r"(/[a-zA-Z0-9_.-]{0,10}){0,3}", fullmatch=True),
)
def test_url_validation_accepts_http_urls_with_hosts(scheme: str, host: str, path: str) -> None:
    url = f"{scheme}://{host}{path}"
    assert check_url(url) == url


@given(
    st.sampled_from(["ftp", "file", "gopher", "javascript", "data", ""]),
    st.text(max_size=30).filter(lambda s: "://" not in s),
)
def test_url_validation_rejects_other_schemes(scheme: str, rest: str) -> None:
    with pytest.raises(ValueError):
        check_url(f"{scheme}://{rest}" if scheme else rest)
