"""Wire models of applications (one per customer of the operator)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from postback.api.wire.common import RATE, Metadata, Rate, Uid, Wire

# Days an application's messages, deliveries and attempts are kept (None: the operator's
# POSTBACK_RETENTION_PERIOD). A postback field: Svix has payloadRetentionPeriod on messages
# only, so this one is named after it.
RetentionPeriod = Annotated[int, Field(ge=1, le=3650)]


class ApplicationIn(Wire):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    uid: Uid | None = None
    throttle_rate: Rate | None = Field(None, validation_alias=RATE)
    metadata: Metadata | None = None
    retention_period: RetentionPeriod | None = None


class ApplicationPatch(Wire):
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    uid: Uid | None = None
    throttle_rate: Rate | None = Field(None, validation_alias=RATE)
    metadata: Metadata | None = None
    retention_period: RetentionPeriod | None = None


class ApplicationOut(Wire):
    id: str
    uid: str | None
    name: str
    throttle_rate: int | None
    metadata: dict[str, str]
    retention_period: int | None = None
    created_at: datetime
    updated_at: datetime
