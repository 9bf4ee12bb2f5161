"""Wire models of the event-type catalog; a schema is checked when it is saved."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator

from postback.api.wire.common import NAME_RE, Name, PayloadPath, Wire
from postback.schemas import SchemaError, check_schemas


class EventTypeBase(Wire):
    description: Annotated[str, Field(max_length=4096)] = ""
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
    archived: bool
    deprecated: bool
    schemas: dict[str, Any] | None
    group_name: str | None
    feature_flags: list[str] | None
    created_at: datetime
    updated_at: datetime
    validate_payloads: bool | None = None
    product_path: str | None = None
