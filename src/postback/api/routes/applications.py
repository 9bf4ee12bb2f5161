"""/api/v1/app: applications, one per customer of the operator."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from postback import ids
from postback.api import views
from postback.api.deps import APP_SCOPED, OPERATOR, PageDep, StoreDep
from postback.api.routing import SlashRouter
from postback.api.wire.applications import ApplicationIn, ApplicationOut, ApplicationPatch
from postback.api.wire.common import ListResponse
from postback.store.errors import NotFound

router = SlashRouter(prefix="/api/v1/app", tags=["Application"])


@router.get("/", response_model=ListResponse[ApplicationOut], dependencies=OPERATOR)
async def list_applications(store: StoreDep, page: PageDep) -> dict:
    return views.listing(await store.list_apps(page), views.application)


@router.post(
    "/",
    response_model=ApplicationOut,
    status_code=201,
    dependencies=OPERATOR,
    responses={200: {"model": ApplicationOut, "description": "Existing (get_if_exists)"}},
)
async def create_application(
    body: ApplicationIn,
    store: StoreDep,
    response: Response,
    get_if_exists: Annotated[bool, Query()] = False,
    get_or_create: Annotated[bool, Query(include_in_schema=False)] = False,
) -> ApplicationOut:
    # The SDK sends get_if_exists; get_or_create is the older spelling.
    if (get_if_exists or get_or_create) and body.uid:
        try:
            existing = await store.get_app(body.uid)
        except NotFound:
            pass
        else:
            response.status_code = 200
            return views.application(existing)
    return views.application(await store.create_app(body.model_dump()))


@router.get("/{app_id}", response_model=ApplicationOut, dependencies=APP_SCOPED)
async def get_application(app_id: str, store: StoreDep) -> ApplicationOut:
    return views.application(await store.get_app(app_id))


@router.put(
    "/{app_id}",
    response_model=ApplicationOut,
    dependencies=OPERATOR,
    responses={201: {"model": ApplicationOut, "description": "Created under this uid"}},
)
async def upsert_application(
    app_id: str, body: ApplicationIn, store: StoreDep, response: Response
) -> ApplicationOut:
    values = body.model_dump()
    if values["uid"] is None and not ids.has_prefix(app_id, ids.APPLICATION):
        values["uid"] = app_id  # addressed by uid: it keeps it
    try:
        return views.application(await store.update_app(app_id, values))
    except NotFound:
        if ids.has_prefix(app_id, ids.APPLICATION):
            raise
    # PUT to an unknown uid creates the application under that uid.
    response.status_code = 201
    return views.application(await store.create_app(values))


@router.patch("/{app_id}", response_model=ApplicationOut, dependencies=OPERATOR)
async def patch_application(app_id: str, body: ApplicationPatch, store: StoreDep) -> ApplicationOut:
    values = body.model_dump(include=body.model_fields_set)
    if "name" in values and values["name"] is None:
        del values["name"]
    return views.application(await store.update_app(app_id, values))


@router.delete("/{app_id}", status_code=204, dependencies=OPERATOR)
async def delete_application(app_id: str, store: StoreDep) -> Response:
    await store.delete_app(app_id)
    return Response(status_code=204)
