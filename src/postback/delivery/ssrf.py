"""The SSRF guard: deliveries go to public addresses only, checked at connect time.

Endpoint URLs are typed by strangers. A name that resolves to 127.0.0.1, 10.x, the cloud
metadata address, or an IPv6 form of any of those would let them reach inside our network.
The check runs on the addresses the connection will actually use (the resolver's answer), so
a name that resolves to something public at save time and private at send time (DNS
rebinding) is still refused.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(OSError):
    """The destination resolves to an address deliveries may not reach."""


def _networks(*blocks: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(b) for b in blocks)


# The IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates): every block,
# with multicast and the reserved 240/4. A few of them are globally reachable anycast for
# infrastructure (AS112, AMT, the old 6to4 relays); no webhook receiver lives there.
_V4_SPECIAL = _networks(
    "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the local host on Linux
    "10.0.0.0/8",
    "100.64.0.0/10",  # carrier-grade NAT, shared
    "127.0.0.0/8",
    "169.254.0.0/16",  # link-local, with cloud metadata services
    "172.16.0.0/12",
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",
    "192.31.196.0/24",  # AS112
    "192.52.193.0/24",  # AMT
    "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
    "192.168.0.0/16",
    "192.175.48.0/24",  # AS112 direct delegation
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and the broadcast address
)
# IANA allocates unicast IPv6 from 2000::/3 only: everything else (::/8 with loopback,
# unspecified, IPv4-compatible ::/96 and IPv4-translated ::ffff:0:0:0/96; NAT64's
# 64:ff9b::/96 and local-use 64:ff9b:1::/48; discard-only 100::/64; SRv6 5f00::/16; unique
# local fc00::/7; link-local fe80::/10; site-local fec0::/10; multicast ff00::/8; and the
# unassigned rest) is refused, save the two forms below that carry an IPv4 address.
_V6_UNICAST = ipaddress.IPv6Network("2000::/3")
# The IPv6 Special-Purpose Address Registry's blocks inside 2000::/3.
_V6_SPECIAL = _networks(
    "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID, AMT, ...
    "2001:db8::/32",  # documentation
    "2620:4f:8000::/48",  # AS112
    "3fff::/20",  # documentation
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a connection to ``addr`` really reaches: IPv4-mapped (the kernel
    connects over IPv4), NAT64's well-known prefix (the translator forwards to it) and 6to4
    (a relay does)."""
    if addr.ipv4_mapped:
        return addr.ipv4_mapped
    if addr in _SIXTOFOUR:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_public(addr: Address) -> bool:
    """Only globally routable unicast addresses are public: this refuses every block of the
    IANA special-purpose registries (loopback, private, link-local with the metadata
    service, shared, documentation, benchmarking, multicast, reserved, ...) and, for IPv6,
    everything outside the unicast space 2000::/3, IPv4 addresses wrapped in IPv6 judged as
    the IPv4 address they reach."""
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_v4(addr)
        if inner is not None:
            return is_public(inner)
        if addr not in _V6_UNICAST or any(addr in net for net in _V6_SPECIAL):
            return False
    elif any(addr in net for net in _V4_SPECIAL):
        return False
    # Python's own table too: it can only refuse more.
    return addr.is_global and not addr.is_multicast


def literal_address(host: str) -> Address | None:
    """The address a URL host names directly, in any form a resolver would accept
    (``127.0.0.1``, ``[::ffff:7f00:1]``, ``2130706433``, ``0x7f.1``); None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # inet_aton's forms: decimal, hex, octal, short dotted
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_address(host: str, addr: Address) -> None:
    if not is_public(addr):
        raise BlockedAddress(f"{host} resolves to {addr}, a non-public address (SSRF guard)")


class GuardedResolver(AbstractResolver):
    """Resolves like the default resolver, then refuses non-public answers."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            check_address(host, ipaddress.ip_address(result["host"]))
        return results

    async def close(self) -> None:
        await self._inner.close()


def blocked_reason(exc: BaseException) -> str | None:
    """The guard's message if ``exc`` (or what caused it) is the guard refusing."""
    seen: Any = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, BlockedAddress):
            return str(seen)
        seen = getattr(seen, "os_error", None) or seen.__cause__ or seen.__context__
    return None
