"""Egress through a proxy (POSTBACK_EGRESS_PROXY): static source addresses for receivers that
allowlist their senders.

Which requests go through it: every delivery and OAuth2 token request, save hosts matching
POSTBACK_EGRESS_NO_PROXY. An ``http://`` (or ``https://``) proxy is asked with CONNECT for
https targets and with an absolute URI for http ones (aiohttp's own proxy support); a
``socks5://`` proxy tunnels both (aiohttp-socks), ``socks5h://`` lets the proxy resolve.

The SSRF guard holds in front of the proxy: the proxy resolves the receiver's name itself, so
postback resolves it first and refuses a refused address before the proxy is asked
(``Egress.precheck``). A name can resolve differently a moment later at the proxy (DNS
rebinding), so the proxy must refuse private destinations too: docs/deploy.md says how.

Failures at the proxy are told apart (``proxy_failure``): those of the proxy itself (it does
not answer, wants credentials, refuses the destination) are recorded as proxy errors and
left out of the endpoint's health; a proxy that reports it could not reach the receiver is
the receiver's failure, recorded as reported by the proxy.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from aiohttp_socks import (
    ProxyConnectionError,
    ProxyConnector,
    ProxyError,
    ProxyTimeoutError,
    ProxyType,
)

from postback.delivery.ssrf import (
    BlockedAddress,
    NetworkPolicy,
    check_address,
    literal_address,
    parse_networks,
)

# How long a name's verdict is kept: the connector's own DNS cache keeps answers as long.
PRECHECK_TTL = 60.0
# What aiohttp-socks raises (plain exceptions, not aiohttp's or OSError).
SOCKS_ERRORS = (ProxyConnectionError, ProxyError, ProxyTimeoutError)
# SOCKS5 replies (RFC 1928 §6) saying the proxy could not reach the destination.
_SOCKS_UNREACHABLE = {3: "network unreachable", 4: "host unreachable", 5: "connection refused"}


@dataclass(frozen=True)
class Proxy:
    scheme: str  # http, https, socks5, socks5h
    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def is_socks(self) -> bool:
        return self.scheme.startswith("socks")

    @property
    def url(self) -> str:
        """The proxy's URL without its credentials (safe to show in an attempt)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def headers(self) -> dict[str, str] | None:
        """Proxy-Authorization for an HTTP proxy with credentials (RFC 7617 Basic)."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}


def parse_proxy(url: str) -> Proxy:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError("a proxy URL needs a host and a port")
    return Proxy(
        scheme=parts.scheme.lower(),
        host=parts.hostname,
        port=parts.port,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class NoProxy:
    """POSTBACK_EGRESS_NO_PROXY: ``*``, names (``hooks.internal``: that host and its
    subdomains; ``.internal``: subdomains only), and CIDR blocks for address literals."""

    def __init__(self, text: str) -> None:
        entries = [e.strip().lower() for e in text.split(",") if e.strip()]
        self.everything = "*" in entries
        networks, names = [], []
        for entry in entries:
            if entry == "*":
                continue
            try:
                networks.extend(parse_networks([entry]))
            except ValueError:
                names.append(entry)
        self._networks = tuple(networks)
        self._names = tuple(names)

    def bypass(self, host: str) -> bool:
        if self.everything:
            return True
        host = host.lower().strip("[]").rstrip(".")
        addr = literal_address(host)
        if addr is not None:
            return any(addr in net for net in self._networks)
        for name in self._names:
            if name.startswith("."):
                if host.endswith(name):
                    return True
            elif host == name or host.endswith("." + name):
                return True
        return False


class Egress:
    """The route of each request and the check made before a proxy is asked."""

    def __init__(
        self,
        proxy_url: str | None,
        no_proxy: str = "",
        *,
        policy: NetworkPolicy,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.proxy = parse_proxy(proxy_url) if proxy_url else None
        self.no_proxy = NoProxy(no_proxy)
        self.policy = policy
        self._resolver = resolver
        self._verdicts: dict[tuple[str, int], tuple[float, str | None]] = {}

    def proxy_for(self, host: str) -> Proxy | None:
        if self.proxy is None or self.no_proxy.bypass(host):
            return None
        return self.proxy

    async def precheck(self, host: str, port: int) -> str | None:
        """Why a request to ``host`` may not be handed to the proxy, or None. The name is
        resolved here with the system resolver and every answer judged by the network
        policy; a name that does not resolve here is not sent either (the guard cannot
        judge it)."""
        if not self.policy.checks:
            return None
        addr = literal_address(host)
        if addr is not None:
            try:
                check_address(host, addr, self.policy)
            except BlockedAddress as exc:
                return str(exc)
            return None
        now = time.monotonic()
        key = (host.lower(), port)
        kept = self._verdicts.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        verdict = await self._judge(host, port)
        if len(self._verdicts) >= 10_000:
            self._verdicts.clear()
        self._verdicts[key] = (now + PRECHECK_TTL, verdict)
        return verdict

    async def _judge(self, host: str, port: int) -> str | None:
        resolver = self._resolver or DefaultResolver()
        try:
            answers = await resolver.resolve(host, port, socket.AF_UNSPEC)
        except OSError as exc:
            return f"{host} does not resolve here ({exc}): not sent through the proxy (SSRF guard)"
        finally:
            if self._resolver is None:
                await resolver.close()
        try:
            for answer in answers:
                check_address(host, ipaddress.ip_address(answer["host"]), self.policy)
        except BlockedAddress as exc:
            return f"{exc}; not sent through the proxy"
        return None


def proxy_failure(exc: BaseException, proxy: Proxy) -> tuple[str, bool] | None:
    """An exception raised at the proxy as (attempt error text, whether it is the proxy's
    own fault), or None if the proxy was not the problem."""
    where = proxy.url
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        reason = exc.os_error.strerror or str(exc.os_error)
        return f"proxy error: cannot connect to the proxy {where}: {reason}", True
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        status = f"{exc.status} {exc.message}".strip()
        if exc.status in (502, 503, 504):
            return f"proxy error: the proxy {where} could not reach the receiver ({status})", False
        if exc.status == 407:
            return f"proxy error: the proxy {where} refused our credentials ({status})", True
        return f"proxy error: the proxy {where} refused the request ({status})", True
    if proxy.is_socks and isinstance(exc, SOCKS_ERRORS):
        code = getattr(exc, "error_code", None)
        if code in _SOCKS_UNREACHABLE:
            text = _SOCKS_UNREACHABLE[code]
            return f"proxy error: the proxy {where} could not reach the receiver ({text})", False
        if isinstance(exc, ProxyTimeoutError):
            return f"proxy error: timed out through the proxy {where}", False
        return f"proxy error: {where}: {exc}"[:500], True
    return None


def socks_connector(proxy: Proxy, **kwargs: object) -> aiohttp.TCPConnector:
    """A connector that tunnels every connection through the SOCKS5 proxy."""
    return ProxyConnector(
        proxy_type=ProxyType.SOCKS5,
        host=proxy.host,
        port=proxy.port,
        username=proxy.username,
        password=proxy.password,
        rdns=proxy.scheme == "socks5h",
        **kwargs,  # type: ignore[arg-type]
    )
