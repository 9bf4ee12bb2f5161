"""Wire models of app-portal access and of expiring an application's tokens."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from postback.api.wire.applications import ApplicationIn
from postback.api.wire.common import Wire


class AppPortalAccessIn(Wire):
    expiry: Annotated[int, Field(ge=60, le=365 * 86400)] | None = None  # seconds
    read_only: bool | None = None
    application: ApplicationIn | None = None
    feature_flags: list[str] | None = None
    session_id: str | None = None


class AppPortalAccessOut(Wire):
    url: str
    token: str


class ApplicationTokenExpireIn(Wire):
    expiry: Annotated[int, Field(ge=0, le=7 * 86400)] | None = None  # grace, seconds
    session_ids: list[str] | None = None
