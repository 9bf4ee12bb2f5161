"""A router that serves every path with and without its trailing slash, redirecting neither:
the Svix SDK sends ``/api/v1/app`` and older clients ``/api/v1/app/``, and the SDK does not
follow redirects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

from postback.api.strictjson import StrictJSONRoute

Handler = TypeVar("Handler", bound=Callable[..., Any])


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


class Routes:
    """Handlers declared once and added to several routers: the same operations at two
    prefixes (a customer's endpoints and the operator's operational ones).
    ``@routes.get(path, …)`` records a route, taking what ``APIRouter.get`` takes;
    ``routes.add_to(router)`` adds every recorded route, in order, through the router's
    own ``add_api_route`` (so a SlashRouter gives each its trailing-slash twin).

    Not ``APIRouter.include_router``: an included router keeps its own paths, which
    would lose the twins."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []

    def route(self, method: str, path: str, **options: Any) -> Callable[[Handler], Handler]:
        def record(handler: Handler) -> Handler:
            self._routes.append((path, handler, {"methods": [method], **options}))
            return handler

        return record

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **options)

    def add_to(self, router: APIRouter) -> None:
        for path, handler, options in self._routes:
            router.add_api_route(path, handler, **options)
