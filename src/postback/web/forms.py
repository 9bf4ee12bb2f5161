"""Reading the portal's endpoint form into store values, with the same limits as the API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import FormData

from postback.api.models import SENSITIVE_HEADERS, check_headers
from postback.filters import RuleError, check_filter, check_projection
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
        **payload_rules(form),
    }


PROJECTION_MODES = ("all", "include", "exclude")


def payload_rules(form: FormData) -> dict[str, Any]:
    """The advanced part of the form: a payload filter (JSON) and the fields sent."""
    text = str(form.get("payload_filter") or "").strip()
    rule = None
    if text:
        try:
            rule = json.loads(text)
        except ValueError:
            raise Invalid("The payload filter must be JSON.") from None
        try:
            check_filter(rule)
        except RuleError as exc:
            raise Invalid("The payload filter is not valid.", f"({exc.located})") from None
    mode = str(form.get("projection_mode") or "all")
    lines = str(form.get("projection") or "").splitlines()
    pointers = [line.strip() for line in lines if line.strip()]
    projection = None
    if mode in ("include", "exclude"):
        if not pointers:
            raise Invalid("List at least one field, as a JSON pointer such as /data/buyer.")
        projection = {mode: pointers}
        try:
            check_projection(projection)
        except RuleError as exc:
            raise Invalid("The list of fields is not valid.", f"({exc.located})") from None
    return {"payload_filter": rule or None, "projection": projection}


def rules_text(endpoint: dict[str, Any] | None) -> dict[str, str]:
    """The form's text for an endpoint's payload rules (stored, or as typed)."""
    if not endpoint:
        return {"filter_text": "", "projection_mode": "all", "projection_text": ""}
    if "filter_text" in endpoint:  # echoed back after an error
        return {k: endpoint[k] for k in ("filter_text", "projection_mode", "projection_text")}
    rule, projection = endpoint.get("payload_filter"), endpoint.get("projection") or {}
    mode, pointers = next(iter(projection.items()), ("all", []))
    return {
        "filter_text": json.dumps(rule, indent=2, ensure_ascii=False) if rule else "",
        "projection_mode": mode,
        "projection_text": "\n".join(pointers),
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
