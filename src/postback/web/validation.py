"""One validation for the API and the web: what a form posts is checked by the API's own
wire models (``postback.api.wire``), and their first error is shown in the form, in the
reader's language, with the model's own words after it.

So a limit (URL length, description length, how many event types, the shape of a name, no
NUL character) cannot differ between the two, and nothing the API would refuse reaches the
database through a page."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from postback.web.render import Invalid

M = TypeVar("M", bound=BaseModel)

NUL_MESSAGE = "Text may not contain the NUL character."
OTHER_MESSAGE = "A value in the form is not allowed."
# The first error's field (its wire name) -> the sentence shown (translated in i18n.py).
FIELD_MESSAGES = {
    "url": "Enter a full http:// or https:// URL.",
    "description": "The description is too long.",
    "eventTypes": "Choose at most 1000 event types, each named as in the catalog.",
    "channels": "Name the channel with letters, digits, '-', '_' or '.'.",
    "product": "Name the product with letters, digits, '-', '_' or '.'.",
    "throttleRate": "The rate limit is a whole number of messages per second.",
    "maxInFlight": "Max in flight is a whole number from 1 to 10000.",
    "headers": "A header is not allowed: check its name and value.",
    "filter": "The payload filter is not valid.",
    "projection": "The list of fields is not valid.",
    "mtls": "The client certificate or the CA bundle is not valid.",
    "oauth": "The OAuth2 settings are not valid.",
    "name": "Name the event type with letters, digits, '-', '_' or '.', e.g. invoice.paid.",
    "schemas": "The schema is not a valid JSON Schema.",
    "productPath": "Write the product's place as a dotted path, e.g. data.product.id.",
    "orderingKeyPath": (
        "Write the ordering key's place as a dotted path, e.g. data.subscription.id."
    ),
}


def validated(model: type[M], wire: dict[str, Any]) -> M:
    """``wire`` (the API's field names) checked by ``model``, or Invalid with its error."""
    try:
        return model.model_validate(wire)
    except ValidationError as exc:
        raise invalid_from(exc) from None


def invalid_from(exc: ValidationError) -> Invalid:
    first = exc.errors(include_url=False, include_input=False)[0]
    loc = [str(part) for part in first["loc"]]
    # Pydantic prefixes a validator's own words with "Value error, ".
    said = str(first["msg"]).removeprefix("Value error, ")
    place = ".".join(loc[1:])
    detail = f"({place}: {said})" if place else f"({said})"
    field = loc[0] if loc else ""
    if "NUL character" in said:
        return Invalid(NUL_MESSAGE, detail)
    return Invalid(FIELD_MESSAGES.get(field, OTHER_MESSAGE), detail, field)
