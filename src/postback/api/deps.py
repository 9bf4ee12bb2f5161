"""Request dependencies: the store, settings, authentication, the application in the path."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request

from postback.api.masking import viewing
from postback.config import Settings
from postback.schemas import SchemaCatalog
from postback.store.errors import NotFound
from postback.store.operational import OPERATIONAL_APP_ID
from postback.store.pages import MAX_LIMIT, Page
from postback.store.store import Store
from postback.store.tokens import Principal

# Dependencies are async even when they do not await: FastAPI runs a plain ``def``
# dependency in a worker thread, a thread handoff per request for a dictionary lookup.


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)")
    return token.strip()


async def get_schemas(request: Request) -> SchemaCatalog:
    return request.app.state.schemas


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SchemasDep = Annotated[SchemaCatalog, Depends(get_schemas)]


async def authenticate(request: Request, store: StoreDep) -> Principal:
    principal = await store.authenticate(bearer_token(request))
    if principal is None:
        raise HTTPException(401, "invalid, revoked or expired token")
    viewing(read_only=principal.read_only)  # a read-only token sees no URL credentials
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def operator_only(request: Request, principal: PrincipalDep, store: StoreDep) -> Principal:
    if not principal.is_operator:
        if "app_id" in request.path_params:
            await own_app(request, principal, store)  # another tenant's app: 404, not 403
        raise HTTPException(403, "this token is scoped to one application's portal")
    return principal


async def own_app(request: Request, principal: PrincipalDep, store: StoreDep) -> Principal:
    """App-level routes. An app-portal token reaches its own application only: any other
    is "not found", word for word as if it did not exist, so nothing about it leaks."""
    if principal.is_operator:
        return principal
    ref = request.path_params.get("app_id", "")
    try:
        app = await store.get_app(ref)
    except NotFound:
        app = None
    if app is None or app["id"] != principal.app_id:
        raise NotFound(f"application {ref!r} not found")
    if principal.read_only and request.method not in ("GET", "HEAD", "OPTIONS"):
        raise HTTPException(403, "this portal token is read-only")
    return principal


OPERATOR = [Depends(operator_only)]
APP_SCOPED = [Depends(own_app)]
ANY_TOKEN = [Depends(authenticate)]


async def app_in_path(app_id: str, store: StoreDep) -> dict[str, Any]:
    return await store.get_app(app_id)


AppDep = Annotated[dict[str, Any], Depends(app_in_path)]


async def endpoint_app(request: Request, store: StoreDep) -> dict[str, Any]:
    """The application whose endpoints a route serves: the one in the path under
    /app/{app_id}/ (its token was checked by the router's dependencies), or the operator's
    hidden operational application under /operational-webhook/."""
    app_id = request.path_params.get("app_id")
    if app_id is None:
        return {"id": OPERATIONAL_APP_ID}
    return await store.get_app(app_id)


async def app_id_in_path(app_id: str) -> None:
    """Declares the path's ``{app_id}`` so that OpenAPI documents it; ``endpoint_app``
    reads it."""


EndpointApp = Annotated[dict[str, Any], Depends(endpoint_app)]


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    iterator: Annotated[str | None, Query(max_length=300)] = None,
    order: Annotated[str | None, Query(pattern="^(ascending|descending)$")] = None,
) -> Page:
    return Page(limit=limit, iterator=iterator, descending=order == "descending")


async def newest_first(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    iterator: Annotated[str | None, Query(max_length=300)] = None,
    order: Annotated[str | None, Query(pattern="^(ascending|descending)$")] = None,
) -> Page:
    """Messages and attempts list newest first unless asked otherwise."""
    return Page(limit=limit, iterator=iterator, descending=order != "ascending")


PageDep = Annotated[Page, Depends(page_params)]
NewestFirstDep = Annotated[Page, Depends(newest_first)]


def split_list(values: list[str] | None) -> list[str] | None:
    """``event_types=a,b`` (the SDK) and ``event_types=a&event_types=b`` both work."""
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v] or None
