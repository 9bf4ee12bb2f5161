"""/api/v1/app/{app_id}/msg: events sent to an application's endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request, Response

from postback import metrics, tracing
from postback.api import errors, views
from postback.api.catalog_rules import (
    EVENT_ID_CONFLICT,
    check_known,
    ordering_key_of,
    product_of,
    same_message,
)
from postback.api.deps import (
    AppDep,
    NewestFirstDep,
    SchemasDep,
    SettingsDep,
    StoreDep,
    split_list,
)
from postback.api.errors import FieldError, payload_violations
from postback.api.idempotency import remember_message
from postback.api.optins import returns_existing
from postback.api.routing import SlashRouter
from postback.api.wire.common import ListResponse
from postback.api.wire.messages import MessageIn, MessageOut
from postback.domain import encode_json
from postback.store.errors import NotFound

router = SlashRouter(prefix="/api/v1/app/{app_id}/msg", tags=["Message"])

EventTypesQuery = Annotated[list[str] | None, Query(max_length=100)]


@router.get("/", response_model=ListResponse[MessageOut])
async def list_messages(
    app: AppDep,
    store: StoreDep,
    page: NewestFirstDep,
    event_types: EventTypesQuery = None,
    channel: Annotated[str | None, Query(max_length=128)] = None,
    tag: Annotated[str | None, Query(max_length=128)] = None,
    before: Annotated[datetime | None, Query()] = None,
    after: Annotated[datetime | None, Query()] = None,
    with_content: Annotated[bool, Query()] = True,
) -> dict:
    result = await store.list_messages(
        app["id"],
        page,
        event_types=split_list(event_types),
        channel=channel,
        tag=tag,
        before=before,
        after=after,
    )
    return views.listing(result, lambda r: views.message(r, with_content=with_content))


@router.post(
    "/",
    response_model=MessageOut,
    status_code=202,
    responses={
        200: {
            "model": MessageOut,
            "description": "This eventId was already sent (only with Postback-Return-Existing)",
        }
    },
)
async def create_message(
    app_id: str,
    body: MessageIn,
    store: StoreDep,
    settings: SettingsDep,
    schemas: SchemasDep,
    request: Request,
    with_content: Annotated[bool, Query()] = True,
) -> Response:
    with tracing.ingest(body.event_type) as span:
        return await _accept_message(
            app_id, body, store, settings, schemas, request, with_content, span
        )


async def _accept_message(
    app_id: str,
    body: MessageIn,
    store: StoreDep,
    settings: SettingsDep,
    schemas: SchemasDep,
    request: Request,
    with_content: bool,
    span: Any,
) -> Response:
    if settings.strict_catalog:
        await check_known(schemas, [body.event_type], ["body", "eventType"], listed=False)
    found = await schemas.check(body.event_type, body.payload)
    if found:
        return payload_violations(found)
    payload = encode_json(body.payload)
    if len(payload) > settings.max_payload_bytes:
        raise FieldError(
            ["body", "payload"], f"payload is larger than {settings.max_payload_bytes} bytes"
        )
    values = body.model_dump(exclude={"payload", "application"}) | {"payload": payload}
    if body.payload_retention_hours:
        values["retention_seconds"] = body.payload_retention_hours * 3600
    elif body.payload_retention_period:
        values["retention_seconds"] = body.payload_retention_period * 86400
    # Its attempts are traced under this (the ingest span, or the caller's traceparent).
    values["trace_context"] = tracing.stored_context(span, request.headers.get("traceparent"))
    values["product"] = await product_of(schemas, body.event_type, body.payload)
    if body.ordering_key is None:
        values["ordering_key"] = await ordering_key_of(schemas, body.event_type, body.payload)
    try:  # the application is looked up in the message's own transaction
        row, created = await store.create_message(app_id, values, app_ref=True)
    except NotFound:
        if body.application is None:
            raise
        # Svix lets the first message create its application in-line.
        inline = body.application.model_dump() | {"uid": body.application.uid or app_id}
        app = await store.create_app(inline)
        row, created = await store.create_message(app["id"], values)
    if created:
        metrics.message_accepted()
    tracing.annotate_ingest(span, row, created)
    # A reused eventId with another event type or payload is said so (a header); a strict
    # catalog refuses it even when the existing message is asked for.
    conflict = not created and same_message(row, body.event_type, body.payload) is False
    flagged = {EVENT_ID_CONFLICT: "true"} if conflict else {}
    if not created and (not returns_existing(request) or (conflict and settings.strict_catalog)):
        # Svix: "If a message with the same eventId already exists ... a 409 conflict".
        other = " with another event type or payload" if conflict else ""
        answer = errors.error(
            409, f"a message with eventId {body.event_id!r} already exists{other} ({row['id']})"
        )
        answer.headers.update(flagged)
        return answer
    remember_message(request.scope, row["app_id"], row["id"], with_content)
    # 200 (asked for): the eventId was seen before and nothing new was queued. The body is
    # written straight from the stored payload bytes (the documented MessageOut, byte for byte).
    return Response(
        views.message_json(row, with_content=with_content),
        status_code=202 if created else 200,
        media_type="application/json",
        headers=flagged,
    )


@router.get("/{msg_id}", response_model=MessageOut)
async def get_message(
    app: AppDep, msg_id: str, store: StoreDep, with_content: Annotated[bool, Query()] = True
) -> MessageOut:
    return views.message(await store.get_message(app["id"], msg_id), with_content=with_content)


@router.delete("/{msg_id}/content", status_code=204)
async def expunge_message_content(app: AppDep, msg_id: str, store: StoreDep) -> Response:
    """Erase the message's content now: its payload, every stored copy of it and its
    attempts' response bodies; the message stays as a tombstone in listings."""
    await store.expunge_content(app["id"], msg_id)
    return Response(status_code=204)
