"""The SSRF guard: deliveries go to public addresses only, checked at connect time.

Endpoint URLs are typed by strangers. A name that resolves to 127.0.0.1, 10.x, the cloud
metadata address, or an IPv6 form of any of those would let them reach inside our network.
The check runs on the addresses the connection will actually use (the resolver's answer), so
a name that resolves to something public at save time and private at send time (DNS
rebinding) is still refused.

Beyond on/off, the operator's network lists (POSTBACK_ALLOWED_NETWORKS, _DENIED_NETWORKS)
shape the verdict: a denied network is always refused, an allowed one is reachable even if
it is private, and everything else must be public unless POSTBACK_ALLOW_PRIVATE_NETWORKS
empties that default deny list (NetworkPolicy).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

if TYPE_CHECKING:
    from postback.config import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def parse_networks(text: str | Iterable[str]) -> tuple[Network, ...]:
    """CIDR blocks from a comma-separated list (or an iterable): ``10.1.0.0/16``,
    ``2001:db8::/32``; a bare address is its own /32 or /128. ValueError names the entry."""
    items = text.split(",") if isinstance(text, str) else list(text)
    found: list[Network] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not a CIDR network: {item!r}") from None
    return tuple(found)


def _forms(addr: Address) -> tuple[Address, ...]:
    """The address and, for IPv6 forms that reach an IPv4 address, that address: a list
    entry 10.0.0.0/8 covers ::ffff:10.0.0.1 too."""
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_v4(addr)
        if inner is not None:
            return (addr, inner)
    return (addr,)


@dataclass(frozen=True)
class NetworkPolicy:
    """Which destination addresses deliveries (and OAuth2 token requests) may reach.

    In order: ``denied`` is always refused; ``allowed`` is reachable even if private;
    the rest must be public (the special-purpose registries are the default deny list)
    unless ``allow_private``."""

    allowed: tuple[Network, ...] = ()
    denied: tuple[Network, ...] = ()
    allow_private: bool = False

    @property
    def checks(self) -> bool:
        """Whether any address can be refused (else the guard need not run at all)."""
        return bool(self.denied) or not self.allow_private

    def refusal(self, addr: Address) -> str | None:
        """Why ``addr`` may not be reached, or None."""
        forms = _forms(addr)
        if any(a in net for a in forms for net in self.denied):
            return "in POSTBACK_DENIED_NETWORKS"
        if self.allow_private or any(a in net for a in forms for net in self.allowed):
            return None
        return None if is_public(addr) else "a non-public address"


DEFAULT_POLICY = NetworkPolicy()


def policy_for(settings: Settings) -> NetworkPolicy:
    return NetworkPolicy(
        allowed=parse_networks(settings.allowed_networks),
        denied=parse_networks(settings.denied_networks),
        allow_private=settings.allow_private_networks,
    )


def check_address(host: str, addr: Address, policy: NetworkPolicy = DEFAULT_POLICY) -> None:
    reason = policy.refusal(addr)
    if reason:
        raise BlockedAddress(f"{host} resolves to {addr}, {reason} (SSRF guard)")


class GuardedResolver(AbstractResolver):
    """Resolves like the default resolver, then refuses answers the policy refuses.
    ``exempt`` names hosts it does not judge: the egress proxy's own name (an operator's
    proxy usually lives at a private address)."""

    def __init__(
        self,
        inner: AbstractResolver | None = None,
        policy: NetworkPolicy = DEFAULT_POLICY,
        exempt: Iterable[str] = (),
    ) -> None:
        self._inner = inner or DefaultResolver()
        self.policy = policy
        self._exempt = frozenset(h.lower() for h in exempt)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if host.lower() in self._exempt:
            return results
        for result in results:
            check_address(host, ipaddress.ip_address(result["host"]), self.policy)
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
