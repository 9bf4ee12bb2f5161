"""The SSRF guard's address table against the IANA special-purpose registries, one address
at a time: as a literal in a URL, and as a resolver's answer (issue 18, finding 8)."""

from __future__ import annotations

import ipaddress

import pytest

from postback.delivery.sender import Sender
from postback.delivery.ssrf import GuardedResolver, is_public, literal_address
from tests.delivery.test_ssrf import StaticResolver, _delivery

# Each refused address, with why.
REFUSED_V6 = {
    "::127.0.0.1": "IPv4-compatible (deprecated ::/96) loopback",
    "::7f00:1": "the same, in hex",
    "::10.0.0.1": "IPv4-compatible private",
    "::8.8.8.8": "IPv4-compatible, even of a public address: nothing routes ::/96",
    "::ffff:0:7f00:1": "IPv4-translated (::ffff:0:0:0/96) loopback",
    "::ffff:0:808:808": "IPv4-translated public: SIIT, never on the Internet",
    "64:ff9b:1::a00:1": "local-use NAT64 (RFC 8215), private inside",
    "64:ff9b:1::808:808": "local-use NAT64 with a public address: the translator is local",
    "64:ff9b::7f00:1": "well-known NAT64 of loopback",
    "fec0::1": "site-local (deprecated)",
    "feff::1": "the end of site-local",
    "fe80::1": "link-local",
    "fd00::1": "unique local",
    "ff02::1": "multicast",
    "::": "unspecified",
    "::1": "loopback",
    "100::1": "discard-only",
    "100:0:0:1::1": "dummy prefix",
    "5f00::1": "SRv6 SIDs",
    "2001::1": "Teredo",
    "2001:2::1": "benchmarking",
    "2001:10::1": "ORCHID",
    "2001:20::1": "ORCHIDv2",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation (RFC 9637)",
    "2620:4f:8000::1": "AS112",
    "2002:a00:1::1": "6to4 of a private address",
    "2002:7f00:1::": "6to4 of loopback",
    "4000::1": "outside 2000::/3: unassigned",
    "e000::1": "unassigned",
}
REFUSED_V4 = {
    "0.0.0.0": "this host",
    "0.1.2.3": "this network",
    "100.64.0.1": "shared (CGN)",
    "192.0.0.1": "IETF protocol assignments",
    "192.0.0.170": "NAT64 discovery",
    "192.0.2.1": "TEST-NET-1",
    "192.31.196.1": "AS112",
    "192.52.193.1": "AMT",
    "192.88.99.1": "6to4 relay anycast",
    "192.175.48.1": "AS112 direct delegation",
    "198.18.0.1": "benchmarking",
    "198.19.255.254": "benchmarking",
    "198.51.100.1": "TEST-NET-2",
    "203.0.113.1": "TEST-NET-3",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast",
}
PUBLIC = [
    "8.8.8.8",
    "93.184.216.34",
    "1.1.1.1",
    "::ffff:8.8.8.8",  # mapped: the kernel connects to 8.8.8.8
    "64:ff9b::808:808",  # well-known NAT64 of a public address
    "2002:808:808::1",  # 6to4 of a public address
    "2606:4700:4700::1111",
    "2a00:1450:4001:82b::200e",
]


@pytest.mark.parametrize("text", [*REFUSED_V6, *REFUSED_V4])
def test_special_purpose_addresses_are_not_public(text: str) -> None:
    assert not is_public(ipaddress.ip_address(text)), REFUSED_V6.get(text) or REFUSED_V4[text]


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_stay_public(text: str) -> None:
    assert is_public(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", list(REFUSED_V6))
async def test_a_v6_literal_in_a_url_is_refused_before_connecting(text: str) -> None:
    assert literal_address(f"[{text}]") == ipaddress.ip_address(text)
    async with Sender(timeout=2) as sender:
        result = await sender.send(_delivery(f"http://[{text}]:8080/hook"))
    assert result.status_code == 0 and "SSRF" in (result.error or ""), result.error


@pytest.mark.parametrize("text", ["::127.0.0.1", "64:ff9b:1::a00:1", "fec0::1", "::ffff:0:7f00:1"])
async def test_a_name_resolving_to_the_gap_addresses_is_refused(text: str) -> None:
    guard = GuardedResolver(StaticResolver({"rebind.test": text}))
    with pytest.raises(OSError, match="non-public"):
        await guard.resolve("rebind.test", 443)
