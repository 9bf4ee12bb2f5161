"""What an endpoint must satisfy before it is saved, for the API and the portal alike: room
under the application's endpoint limit, and a destination deliveries may go to.

The limit (POSTBACK_MAX_ENDPOINTS_PER_APP) keeps one tenant from filling the queue with
endpoints of its own (a portal token can create them). It is counted before the insert,
so creations racing each other may pass it by a few; it bounds abuse, it is not billing.

The SSRF guard (delivery/ssrf.py) decides at connect time, on the addresses actually used,
and still does: a name may resolve elsewhere tomorrow. Checking at save as well tells the
customer now, with a 422 naming the field, instead of through failed deliveries later.
A name that does not resolve (yet) is accepted; the send-time check covers it.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from postback.api.errors import FieldError
from postback.config import Settings
from postback.delivery.ssrf import (
    BlockedAddress,
    GuardedResolver,
    check_address,
    literal_address,
    policy_for,
)
from postback.store.store import Store

URL_FIELD: list[str | int] = ["body", "url"]
# How long a save waits for DNS before giving up on the early check.
RESOLVE_TIMEOUT = 3.0


async def no_room(store: Store, settings: Settings, app_id: str) -> str | None:
    """Why ``app_id`` may not have another endpoint, or None."""
    limit = settings.max_endpoints_per_app
    if limit <= 0 or await store.count_endpoints(app_id) < limit:
        return None
    return (
        f"this application already has {limit} endpoints, the most it may have "
        "(POSTBACK_MAX_ENDPOINTS_PER_APP); delete one first"
    )


def uses_https(url: str) -> bool:
    return urlsplit(url).scheme.lower() == "https"


async def check_destination(
    url: str, settings: Settings, field: list[str | int] | None = None
) -> None:
    """FieldError unless deliveries may go to ``url`` under these settings (the network
    lists included); ``field`` names the field in the error (default: the URL's)."""
    field = field or URL_FIELD
    if settings.require_https and not uses_https(url):
        raise FieldError(field, "URL must use https (this server requires HTTPS)")
    policy = policy_for(settings)
    if not policy.checks:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise FieldError(field, "URL has an invalid port") from None
    try:
        addr = literal_address(host)
        if addr is not None:
            check_address(host, addr, policy)
            return
        resolver = GuardedResolver(policy=policy)
        try:
            await asyncio.wait_for(
                resolver.resolve(host, port, socket.AF_UNSPEC), timeout=RESOLVE_TIMEOUT
            )
        finally:
            await resolver.close()
    except BlockedAddress as exc:
        raise FieldError(field, f"{exc}; deliveries may not go there") from None
    except (OSError, TimeoutError, UnicodeError):
        return  # does not resolve now: the guard decides when it is sent


TOKEN_URL_FIELD: list[str | int] = ["body", "oauth", "tokenUrl"]


async def check_token_url(
    url: str, settings: Settings, field: list[str | int] | None = None
) -> None:
    """An OAuth2 token URL carries the client secret: https only (plain http is let through
    only where private networks are, for local testing), and the same network policy as
    deliveries."""
    field = field or TOKEN_URL_FIELD
    if not uses_https(url) and not settings.allow_private_networks:
        raise FieldError(field, "the token URL must use https (it receives the client secret)")
    await check_destination(url, settings, field)
