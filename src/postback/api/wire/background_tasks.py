"""Wire models of background tasks: recovering an endpoint's failed messages, and a task's
progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import model_validator

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


class BackgroundTaskOut(Wire):
    id: str
    status: str
    task: str
    data: dict[str, Any]
    updated_at: datetime
