"""Wire models of applications (one per customer of the operator)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from postback.api.wire.common import RATE, Metadata, Rate, Uid, Wire


class ApplicationIn(Wire):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    uid: Uid | None = None
    throttle_rate: Rate | None = Field(None, validation_alias=RATE)
    metadata: Metadata | None = None


class ApplicationPatch(Wire):
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    uid: Uid | None = None
    throttle_rate: Rate | None = Field(None, validation_alias=RATE)
    metadata: Metadata | None = None


class ApplicationOut(Wire):
    id: str
    uid: str | None
    name: str
    throttle_rate: int | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
