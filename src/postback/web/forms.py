"""Reading the portal's endpoint form into store values, with the same limits as the API."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import FormData

from postback.api.models import SENSITIVE_HEADERS, check_headers
from postback.web.render import Invalid

MAX_URL = 65536
MAX_RATE = 100_000


def endpoint_values(
    form: FormData, *, require_https: bool, kept: dict[str, str] | None = None
) -> dict[str, Any]:
    url = str(form.get("url") or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
        raise Invalid("Enter a full http:// or https:// URL.")
    if require_https and parts.scheme != "https":
        raise Invalid("This server only delivers to https:// URLs.")
    rate = str(form.get("rate_limit") or "").strip()
    if rate and (not rate.isdigit() or not 1 <= int(rate) <= MAX_RATE):
        raise Invalid("The rate limit is a whole number of messages per second.")
    channel = str(form.get("channel") or "").strip()
    if form.get("scope") == "one" and not channel:
        raise Invalid("Name the product (channel) this endpoint is for.")
    return {
        "url": url,
        "description": str(form.get("description") or "").strip(),
        "event_types": [str(v) for v in form.getlist("event_types")] or None,
        "channels": [channel] if form.get("scope") == "one" else None,
        "throttle_rate": int(rate) if rate else None,
        "headers": parse_headers(str(form.get("headers") or ""), kept),
    }


def parse_headers(text: str, kept: dict[str, str] | None = None) -> dict[str, str]:
    """``Name: value`` lines. Credentials (``kept``) are never shown in the form, so they
    stay unless a line names them again."""
    headers = {k: v for k, v in (kept or {}).items() if k.lower() in SENSITIVE_HEADERS}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise Invalid("Write one header a line, as Name: value.")
        headers[name.strip()] = value.strip()
    try:
        check_headers(headers)
    except ValueError:
        raise Invalid("A header is not allowed: check its name and value.") from None
    return headers


def format_headers(headers: dict[str, str] | None) -> str:
    shown = {k: v for k, v in (headers or {}).items() if k.lower() not in SENSITIVE_HEADERS}
    return "\n".join(f"{k}: {v}" for k, v in shown.items())
