"""Endpoints and reasons in the reader's words: what an endpoint gets (event types, product,
payload filter, fields removed), why it is disabled, why a message did not go to it, and
dates written the way each language writes them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from postback import reasons
from postback.domain import encode_json

Translate = Callable[[str], str]

_MONTHS = {
    "en": "January February March April May June July August September October November December",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
    "diciembre",
    "pt-BR": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro "
    "dezembro",
}


def local_date(value: datetime | str | None, lang: str) -> str:
    """A time as a reader of ``lang`` writes it, in UTC: "3 December 2026, 14:05 UTC",
    "3 de diciembre de 2026, 14:05 UTC", "3 de dezembro de 2026, 14:05 UTC"."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    month = _MONTHS.get(lang, _MONTHS["en"]).split()[value.month - 1]
    clock = value.strftime("%H:%M")
    if lang == "en":
        return f"{value.day} {month} {value.year}, {clock} UTC"
    return f"{value.day} de {month} de {value.year}, {clock} UTC"


def disabled_text(text: str | None, _: Translate, lang: str) -> str:
    """Why an endpoint is disabled (its stored reason), in the reader's language."""
    cause = reasons.disabled_cause(text)
    if cause is None:
        return ""
    code = cause["code"]
    if code == reasons.FAILING_SINCE:
        since = local_date(cause.get("since"), lang)
        if cause.get("attempts"):
            return _(
                "Disabled automatically: every delivery failed since {since} "
                "({attempts} failed attempts)."
            ).format(since=since, attempts=cause["attempts"])
        return _("Disabled automatically: every delivery failed since {since}.").format(since=since)
    if code == reasons.BY_REQUEST:
        return _("Disabled by request.")
    return str(cause.get("text") or code)


def not_sent_text(reason: reasons.Reason | None, _: Translate) -> str:
    """Why a message did not go to an endpoint, in the reader's language."""
    if not reason:
        return ""
    code = reason["code"]
    if code == reasons.EVENT_TYPE:
        return _("Not sent: the endpoint is not subscribed to {event_type}.").format(
            event_type=reason.get("eventType")
        )
    if code == reasons.PRODUCT:
        if reason.get("found") is None:
            text = _("Not sent: the message names no product; the endpoint is for product {p}.")
        else:
            text = _("Not sent: the message is for product {found}; the endpoint for product {p}.")
        return text.format(found=reason.get("found"), p=reason.get("product"))
    if code == reasons.CHANNEL:
        return _("Not sent: the message has none of the endpoint's channels ({channels}).").format(
            channels=", ".join(reason.get("channels") or [])
        )
    if code == reasons.FILTER:
        return _("Not sent: the payload filter did not match ({clause}).").format(
            clause=reason.get("clause")
        )
    if code == reasons.DISABLED:
        return _("Not sent: the endpoint is disabled.")
    if code == reasons.CREATED_AFTER:
        return _("Not sent: the endpoint was created after the message.")
    return _(
        "Not sent: when the message arrived the endpoint was disabled or subscribed otherwise."
    )


# ---- what an endpoint gets -----------------------------------------------------------------


def endpoint_summary(ep: dict[str, Any], _: Translate) -> list[str]:
    """What the endpoint receives, a sentence for each part: event types, product, payload
    filter, fields."""
    types = ep.get("event_types") or []
    said = [
        _("It gets these event types: {names}.").format(names=", ".join(types))
        if types
        else _("It gets every event type.")
    ]
    said.append(product_text(ep, _))
    rule = ep.get("payload_filter")
    if rule:
        said.append(_("Only messages where {condition}.").format(condition=filter_words(rule, _)))
    projection = ep.get("projection") or {}
    mode, pointers = next(iter(projection.items()), ("", []))
    if mode == "exclude":
        said.append(
            _("These fields are removed before sending: {fields}.").format(
                fields=", ".join(pointers)
            )
        )
    elif mode == "include":
        said.append(_("Only these fields are sent: {fields}.").format(fields=", ".join(pointers)))
    else:
        said.append(_("The whole payload is sent."))
    return said


def product_text(ep: dict[str, Any], _: Translate) -> str:
    """Which products the endpoint gets: one product, some channels, a product named by
    its payload filter, or every product."""
    if ep.get("product"):
        return _("Only product {product}.").format(product=ep["product"])
    if ep.get("channels"):
        return _("Only messages on the channels {channels}.").format(
            channels=", ".join(ep["channels"])
        )
    named = filtered_product(ep.get("payload_filter"))
    if named is not None:
        return _("Only product {product} (by its payload filter).").format(product=named)
    if ep.get("payload_filter"):
        return _("The products its payload filter lets through.")
    return _("Every product.")


def filtered_product(rule: Any) -> str | None:
    """The product a payload filter limits an endpoint to, when it names one with an
    equality on a path ending in ``product.id`` (as the catalogs advise)."""
    if not isinstance(rule, dict):
        return None
    for path, cond in rule.items():
        if not path.endswith("product.id"):
            continue
        value = cond.get("$eq") if isinstance(cond, dict) else cond
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


_OPERATORS = {
    "$eq": "{path} is {value}",
    "$ne": "{path} is not {value}",
    "$in": "{path} is one of {value}",
    "$nin": "{path} is none of {value}",
    "$gt": "{path} is more than {value}",
    "$gte": "{path} is at least {value}",
    "$lt": "{path} is less than {value}",
    "$lte": "{path} is at most {value}",
}


def filter_words(rule: dict[str, Any], _: Translate) -> str:
    """A payload filter as a sentence: ``{"data.price": {"$gte": 100}}`` -> "data.price is
    at least 100"."""
    parts = []
    for key, value in rule.items():
        if key in ("$and", "$or") and isinstance(value, list):
            inner = [f"({filter_words(v, _)})" for v in value if isinstance(v, dict)]
            joiner = _(" and ") if key == "$and" else _(" or ")
            parts.append(joiner.join(inner))
        elif isinstance(value, dict):
            parts.extend(_clause(key, op, arg, _) for op, arg in value.items())
        else:
            parts.append(_clause(key, "$eq", value, _))
    return _(" and ").join(parts)


def _clause(path: str, op: str, arg: Any, _: Translate) -> str:
    if op == "$exists":
        return (_("{path} is present") if arg else _("{path} is absent")).format(path=path)
    shown = ", ".join(map(_literal, arg)) if isinstance(arg, list) else _literal(arg)
    template = _OPERATORS.get(op)
    return _(template).format(path=path, value=shown) if template else f"{path} {op} {shown}"


def _literal(value: Any) -> str:
    return value if isinstance(value, str) else encode_json(value).decode()
