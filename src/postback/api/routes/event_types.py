"""/api/v1/event-type: the operator's catalog of events."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from postback.api import views
from postback.api.deps import OPERATOR, PageDep, SchemasDep, StoreDep
from postback.api.routing import SlashRouter
from postback.api.wire.common import ListResponse
from postback.api.wire.event_types import EventTypeBase, EventTypeIn, EventTypeOut
from postback.store.errors import NotFound

router = SlashRouter(prefix="/api/v1/event-type", tags=["Event Type"])


@router.get("/", response_model=ListResponse[EventTypeOut])
async def list_event_types(
    store: StoreDep,
    page: PageDep,
    include_archived: Annotated[bool, Query()] = False,
    with_content: Annotated[bool, Query()] = False,
) -> dict:
    result = await store.list_event_types(page, include_archived=include_archived)

    def convert(row: dict) -> EventTypeOut:
        return views.event_type(row if with_content else row | {"schemas": None})

    return views.listing(result, convert)


@router.post("/", response_model=EventTypeOut, status_code=201, dependencies=OPERATOR)
async def create_event_type(
    body: EventTypeIn, store: StoreDep, schemas: SchemasDep
) -> EventTypeOut:
    row = await store.create_event_type(body.model_dump())
    schemas.invalidate()
    return views.event_type(row)


@router.get("/{event_type_name}", response_model=EventTypeOut)
async def get_event_type(event_type_name: str, store: StoreDep) -> EventTypeOut:
    return views.event_type(await store.get_event_type(event_type_name))


@router.put(
    "/{event_type_name}",
    response_model=EventTypeOut,
    dependencies=OPERATOR,
    responses={201: {"model": EventTypeOut, "description": "Created"}},
)
async def upsert_event_type(
    event_type_name: str,
    body: EventTypeBase,
    store: StoreDep,
    schemas: SchemasDep,
    response: Response,
) -> EventTypeOut:
    schemas.invalidate()
    values = body.model_dump()
    values["archived"] = bool(values["archived"])
    values["deprecated"] = bool(values["deprecated"])
    try:
        return views.event_type(await store.update_event_type(event_type_name, values))
    except NotFound:
        checked = EventTypeIn.model_validate(values | {"name": event_type_name})
    response.status_code = 201
    return views.event_type(await store.create_event_type(checked.model_dump()))


@router.patch("/{event_type_name}", response_model=EventTypeOut, dependencies=OPERATOR)
async def patch_event_type(
    event_type_name: str, body: EventTypeBase, store: StoreDep, schemas: SchemasDep
) -> EventTypeOut:
    schemas.invalidate()
    values = body.model_dump(include=body.model_fields_set)
    for flag in ("archived", "deprecated", "description"):
        if flag in values and values[flag] is None:
            del values[flag]
    return views.event_type(await store.update_event_type(event_type_name, values))


@router.delete("/{event_type_name}", status_code=204, dependencies=OPERATOR)
async def delete_event_type(
    event_type_name: str,
    store: StoreDep,
    schemas: SchemasDep,
    expunge: Annotated[bool, Query()] = False,
) -> Response:
    await store.delete_event_type(event_type_name, expunge=expunge)
    schemas.invalidate()
    return Response(status_code=204)
