"""A router that serves every path with and without its trailing slash, redirecting neither:
the Svix SDK sends ``/api/v1/app`` and older clients ``/api/v1/app/``, and the SDK does not
follow redirects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter


class SlashRouter(APIRouter):
    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        path = path.rstrip("/")
        if not path and not self.prefix:
            path = "/"
        super().add_api_route(path, endpoint, **kwargs)
        if path != "/":
            alias = dict(kwargs, include_in_schema=False)
            alias.pop("operation_id", None)
            super().add_api_route(path + "/", endpoint, **alias)
