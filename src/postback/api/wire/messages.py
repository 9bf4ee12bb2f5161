"""Wire models of messages and of the events feed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator

from postback.api.wire.applications import ApplicationIn
from postback.api.wire.common import NAME_RE, Channels, Name, Wire


class MessageIn(Wire):
    event_type: Name
    payload: dict[str, Any]
    event_id: Annotated[str, Field(min_length=1, max_length=256, pattern=NAME_RE)] | None = None
    channels: Channels | None = None
    tags: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=128, pattern=NAME_RE)]],
            Field(max_length=10),
        ]
        | None
    ) = None
    application: ApplicationIn | None = None
    deliver_at: datetime | None = None
    # postback's own: deliveries to an ordered endpoint go out in order within this key
    # (absent: the endpoint's one shared key).
    ordering_key: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    payload_retention_period: Annotated[int, Field(ge=1, le=365 * 5)] | None = None
    payload_retention_hours: Annotated[int, Field(ge=1, le=365 * 5 * 24)] | None = None

    @field_validator("deliver_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("deliverAt needs a timezone")
        return value


class MessageOut(Wire):
    id: str
    event_type: str
    event_id: str | None
    payload: dict[str, Any]
    channels: list[str] | None
    tags: list[str] | None
    timestamp: datetime
    deliver_at: datetime | None = None
    ordering_key: str | None = None


class EventOut(MessageOut):
    # Resume right after this message (the events feed).
    cursor: str


class EventListOut(Wire):
    data: list[EventOut]
    iterator: str | None
    prev_iterator: str | None
    done: bool
