"""A router that serves every path with and without its trailing slash, redirecting neither:
the Svix SDK sends ``/api/v1/app`` and older clients ``/api/v1/app/``, and the SDK does not
follow redirects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from postback.api.strictjson import StrictJSONRoute


class SlashRouter(APIRouter):
    def __init__(self, **kwargs: Any) -> None:
        # Every API body is read strictly (see strictjson.py).
        kwargs.setdefault("route_class", StrictJSONRoute)
        super().__init__(**kwargs)

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        path = path.rstrip("/")
        if not path and not self.prefix:
            path = "/"
        super().add_api_route(path, endpoint, **kwargs)
        if path != "/":
            alias = dict(kwargs, include_in_schema=False)
            alias.pop("operation_id", None)
            super().add_api_route(path + "/", endpoint, **alias)
