"""Wire models of the event-type catalog; a schema is checked when it is saved."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator

from postback.api.wire.common import NAME_RE, Name, PayloadPath, Wire
from postback.schemas import SchemaError, check_schemas

# A language tag (BCP 47's shape, as browsers send them): "es", "pt-BR", "zh-Hant-TW".
LanguageTag = Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")]
Description = Annotated[str, Field(max_length=4096)]
Descriptions = Annotated[dict[LanguageTag, Description], Field(max_length=32)]


class EventTypeBase(Wire):
    description: Description = ""
    # postback's own: the description in other languages, by language tag; the portal shows
    # the reader's, else ``description``.
    descriptions: Descriptions | None = None
    archived: bool | None = None
    deprecated: bool | None = None
    schemas: dict[str, Any] | None = None
    group_name: Annotated[str, Field(max_length=256)] | None = None
    feature_flags: list[Annotated[str, Field(max_length=256, pattern=NAME_RE)]] | None = None
    # postback's own: check message payloads against the newest schema (None: the
    # server's POSTBACK_VALIDATE_PAYLOADS).
    validate_payloads: bool | None = None
    # postback's own: where this event type's payloads name the product (a dotted path such
    # as data.product.id); endpoints for one product get the messages naming it there.
    product_path: PayloadPath | None = None
    # postback's own: where its payloads name their ordering key (a dotted path such as
    # data.subscription.id): a message sent without orderingKey takes the string or whole
    # number found there (none there: no key). docs/architecture.md, "Ordered delivery".
    ordering_key_path: PayloadPath | None = None

    @field_validator("schemas")
    @classmethod
    def _valid_schemas(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            return check_schemas(value)
        except SchemaError as exc:
            raise ValueError(str(exc)) from None


class EventTypeIn(EventTypeBase):
    name: Name


class EventTypeOut(Wire):
    name: str
    description: str
    descriptions: dict[str, str] | None = None
    archived: bool
    deprecated: bool
    schemas: dict[str, Any] | None
    group_name: str | None
    feature_flags: list[str] | None
    created_at: datetime
    updated_at: datetime
    validate_payloads: bool | None = None
    product_path: str | None = None
    ordering_key_path: str | None = None
