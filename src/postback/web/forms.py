"""Reading the portal's endpoint form into store values, checked by the API's own model
(``EndpointIn``): the same limits, the same refusals."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData

from postback.api.wire.common import SENSITIVE_HEADERS
from postback.api.wire.endpoints import EndpointIn
from postback.web.render import Invalid
from postback.web.validation import validated

# What the form sets; the rest of an endpoint (uid, metadata, secret, ...) it leaves alone.
FORM_FIELDS = {
    "url",
    "description",
    "event_types",
    "channels",
    "product",
    "throttle_rate",
    "headers",
    "payload_filter",
    "projection",
    "max_in_flight",
    "mtls",
    "oauth",
}


def endpoint_values(
    form: FormData, *, require_https: bool, kept: dict[str, str] | None = None
) -> dict[str, Any]:
    url = str(form.get("url") or "").strip()
    rate = str(form.get("rate_limit") or "").strip()
    if rate and not rate.isdigit():
        raise Invalid(
            "The rate limit is a whole number of messages per second.", field="throttleRate"
        )
    product = str(form.get("product") or "").strip()
    if form.get("scope") == "one" and not product:
        raise Invalid("Name the product this endpoint is for.", field="product")
    wire = {
        "url": url,
        "description": str(form.get("description") or "").strip(),
        "eventTypes": [str(v) for v in form.getlist("event_types")] or None,
        # One product: matched with the product a message names (its event type's
        # productPath) or among its channels, so senders need not send channels.
        "product": product if form.get("scope") == "one" else None,
        "channels": None,
        "throttleRate": int(rate) if rate else None,
        # As typed: the model says what a whole number from 1 to 10000 is, not the form.
        "maxInFlight": str(form.get("max_in_flight") or "").strip() or None,
        "headers": parse_headers(str(form.get("headers") or ""), kept),
        **payload_rules(form),
    }
    credentials = credential_fields(form)
    values = validated(EndpointIn, wire | credentials).model_dump(include=FORM_FIELDS)
    for name in ("mtls", "oauth"):
        if name not in credentials:
            values.pop(name, None)  # left empty: what is stored stays
    if require_https and not values["url"].startswith("https://"):
        raise Invalid("This server only delivers to https:// URLs.")
    return values


def credential_fields(form: FormData) -> dict[str, Any]:
    """The form's credentials, in the API's terms, only when the form changes them: a PEM
    typed in replaces the stored client certificate and CA bundle (both at once), a token
    URL typed in replaces the OAuth2 settings (with their secret, typed again), a "remove"
    box takes them away, empty fields keep them."""
    found: dict[str, Any] = {}
    identity = str(form.get("client_identity") or "").strip()
    ca_bundle = str(form.get("ca_bundle") or "").strip()
    if identity or ca_bundle:
        found["mtls"] = {"identity": identity or None, "caBundle": ca_bundle or None}
    elif form.get("remove_mtls"):
        found["mtls"] = None
    token_url = str(form.get("oauth_token_url") or "").strip()
    if token_url:
        method = "clientSecretPost" if form.get("oauth_auth_method") == "body" else None
        found["oauth"] = {
            "tokenUrl": token_url,
            "clientId": str(form.get("oauth_client_id") or "").strip(),
            "clientSecret": str(form.get("oauth_client_secret") or ""),
            "scopes": str(form.get("oauth_scopes") or "").split() or None,
            "audience": str(form.get("oauth_audience") or "").strip() or None,
            "authMethod": method or "clientSecretBasic",
        }
    elif form.get("remove_oauth"):
        found["oauth"] = None
    return found


PROJECTION_MODES = ("all", "include", "exclude")


def payload_rules(form: FormData) -> dict[str, Any]:
    """The advanced part of the form, in the API's terms: a payload filter (JSON) and the
    fields sent. Only what is particular to the form is checked here; the rules themselves
    are the model's to check."""
    text = str(form.get("payload_filter") or "").strip()
    rule = None
    if text:
        try:
            rule = json.loads(text)
        except ValueError:
            raise Invalid("The payload filter must be JSON.", field="filter") from None
        if not isinstance(rule, dict):
            raise Invalid("The payload filter is not valid.", "(a JSON object)", "filter")
    mode = str(form.get("projection_mode") or "all")
    lines = str(form.get("projection") or "").splitlines()
    pointers = [line.strip() for line in lines if line.strip()]
    projection = None
    if mode in ("include", "exclude"):
        if not pointers:
            raise Invalid(
                "List at least one field, as a JSON pointer such as /data/buyer.",
                field="projection",
            )
        projection = {mode: pointers}
    return {"filter": rule or None, "projection": projection}


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
    """``Name: value`` lines (the model checks names and values). Credentials (``kept``) are
    never shown in the form, so they stay unless a line names them again."""
    headers = {k: v for k, v in (kept or {}).items() if k.lower() in SENSITIVE_HEADERS}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise Invalid("Write one header a line, as Name: value.", field="headers")
        headers[name.strip()] = value.strip()
    return headers


def format_headers(headers: dict[str, str] | None) -> str:
    shown = {k: v for k, v in (headers or {}).items() if k.lower() not in SENSITIVE_HEADERS}
    return "\n".join(f"{k}: {v}" for k, v in shown.items())
