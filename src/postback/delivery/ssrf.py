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


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), if any."""
    if addr.ipv4_mapped:
        return addr.ipv4_mapped
    if addr.sixtofour:
        return addr.sixtofour
    if addr in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_public(addr: Address) -> bool:
    """Only globally routable unicast addresses are public: this refuses loopback, private
    (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the metadata
    service, fe80::/10), multicast, unspecified, reserved, shared (100.64/10) and
    documentation ranges, also when wrapped in an IPv6 address."""
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_v4(addr)
        if inner is not None and not is_public(inner):
            return False
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
