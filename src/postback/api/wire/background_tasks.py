"""Wire models of background tasks: recovering an endpoint's failed messages, replaying
its missing ones, usage statistics, and a task's progress."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator

from postback.api.wire.common import Wire


class RecoverIn(Wire):
    since: datetime
    until: datetime | None = None

    @model_validator(mode="after")
    def _window(self) -> RecoverIn:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a timezone")
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class RecoverOut(Wire):
    id: str
    status: str
    task: str
    updated_at: datetime


# Svix's replay-missing takes and answers the same as recover.
ReplayIn = RecoverIn
ReplayOut = RecoverOut


class AppUsageStatsIn(Wire):
    since: datetime
    until: datetime
    # Ids or uids; none: every application with message destinations in the window.
    app_ids: list[Annotated[str, Field(max_length=256)]] | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _window(self) -> AppUsageStatsIn:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("since and until need a timezone")
        if self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class AppUsageStatsOut(RecoverOut):
    unresolved_app_ids: list[str]


class AggregateEventTypesOut(RecoverOut):
    pass


class BackgroundTaskOut(Wire):
    id: str
    status: str
    task: str
    data: dict[str, Any]
    updated_at: datetime
