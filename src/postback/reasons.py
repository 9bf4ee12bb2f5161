"""Reasons as codes with values: why an endpoint is disabled, and why a message did not go
to an endpoint. They are stored and sent as small JSON objects (``{"code": ..., ...}``) and
worded for each reader: in English here (the API's sentences, the log), in the reader's
language by the web pages (web/i18n_reasons.py).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

Reason = dict[str, Any]

# ---- why an endpoint is disabled (endpoints.disabled_reason, JSON text) ------------------

FAILING_SINCE = "failing_since"  # auto-disable: {"since": ISO time, "attempts": n}
BY_REQUEST = "by_request"  # PATCH disabled=true, the portal's Disable button
TEXT = "text"  # a sentence from before reasons had codes: {"text": ...}

# ---- why an endpoint's circuit breaker moved (the log line) ------------------------------

FAILED_IN_A_ROW = "failed_in_a_row"  # opened: {"failures": n}
ANSWERED = "answered"  # closed: the probe (or any attempt) was answered

# ---- why a message did not go to an endpoint ---------------------------------------------

EVENT_TYPE = "event_type"  # {"eventType": the message's, "subscribed": [the endpoint's]}
CHANNEL = "channel"  # {"channels": the endpoint's, "messageChannels": the message's}
PRODUCT = "product"  # {"product": the endpoint's, "found": the message's or null}
FILTER = "filter"  # {"clause": the clause of the payload filter that did not hold}
DISABLED = "disabled"  # the endpoint is disabled
CREATED_AFTER = "created_after"  # the endpoint did not exist yet
# The endpoint would take the message today: it was disabled, or subscribed otherwise, when
# the message arrived.
CHANGED_SINCE = "changed_since"

# Written by auto-disable before reasons had codes (migration 0013 reads it).
_LEGACY_FAILING = re.compile(r"^every delivery failed since (\S+) \(auto-disabled\)$")


def failing_since(since: datetime, attempts: int) -> Reason:
    return {"code": FAILING_SINCE, "since": since.isoformat(), "attempts": attempts}


def by_request() -> Reason:
    return {"code": BY_REQUEST}


def stored(reason: Reason | None) -> str | None:
    """A reason as the text column keeps it."""
    return None if reason is None else json.dumps(reason, separators=(",", ":"))


def disabled_cause(text: str | None) -> Reason | None:
    """The stored reason an endpoint is disabled, as a code with values (a sentence written
    before codes is read as one)."""
    if not text:
        return None
    if text.startswith("{"):
        try:
            found = json.loads(text)
        except ValueError:
            found = None
        if isinstance(found, dict) and isinstance(found.get("code"), str):
            return found
    if text == "disabled by request":
        return by_request()
    legacy = _LEGACY_FAILING.match(text)
    if legacy:
        return {"code": FAILING_SINCE, "since": legacy.group(1), "attempts": None}
    return {"code": TEXT, "text": text}


def filter_note(note: str) -> Reason:
    """A canceled delivery's note (the filter clause that did not hold) as a reason."""
    return {"code": FILTER, "clause": note}


def english(reason: Reason | None) -> str | None:
    """The reason in an English sentence (the API's ``disabledReason`` and ``note``)."""
    if reason is None:
        return None
    code = reason.get("code")
    if code == FAILING_SINCE:
        attempts = reason.get("attempts")
        count = f" ({attempts} failed attempts)" if attempts else ""
        return f"auto-disabled: every delivery failed since {reason.get('since')}{count}"
    if code == BY_REQUEST:
        return "disabled by request"
    if code == FAILED_IN_A_ROW:
        return f"{reason.get('failures')} attempts failed in a row"
    if code == ANSWERED:
        return "the endpoint answered again"
    if code == EVENT_TYPE:
        return f"not subscribed to {reason.get('eventType')}"
    if code == CHANNEL:
        wanted = ", ".join(reason.get("channels") or [])
        return f"the message has none of the endpoint's channels ({wanted})"
    if code == PRODUCT:
        found = reason.get("found")
        other = f"product {found}" if found is not None else "no product"
        return f"the message is for {other}, the endpoint only for product {reason.get('product')}"
    if code == FILTER:
        return str(reason.get("clause"))  # the clause alone, as the note always said
    if code == DISABLED:
        return "the endpoint is disabled"
    if code == CREATED_AFTER:
        return "the endpoint was created after the message"
    if code == CHANGED_SINCE:
        return "the endpoint was disabled or subscribed otherwise when the message arrived"
    return str(reason.get("text") or code)
