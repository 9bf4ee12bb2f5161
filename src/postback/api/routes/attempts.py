"""Attempts and delivery status: what was sent where, and what came back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query, Response

from postback.api import views
from postback.api.deps import AppDep, NewestFirstDep, PageDep, StoreDep, split_list
from postback.api.routing import SlashRouter
from postback.api.wire.attempts import EndpointMessageOut, MessageAttemptOut, MessageEndpointOut
from postback.api.wire.common import ListResponse

router = SlashRouter(prefix="/api/v1/app/{app_id}", tags=["Message Attempt"])

Status = Annotated[int | None, Query(ge=0, le=4)]
CodeClass = Annotated[int | None, Query(ge=0, le=500, multiple_of=100)]
EventTypes = Annotated[list[str] | None, Query(max_length=100)]
Channel = Annotated[str | None, Query(max_length=128)]
When = Annotated[datetime | None, Query()]
Flag = Annotated[bool, Query()]


@router.get("/attempt/endpoint/{endpoint_id}", response_model=ListResponse[MessageAttemptOut])
async def list_attempts_by_endpoint(
    app: AppDep,
    endpoint_id: str,
    store: StoreDep,
    page: NewestFirstDep,
    status: Status = None,
    status_code_class: CodeClass = None,
    event_types: EventTypes = None,
    channel: Channel = None,
    before: When = None,
    after: When = None,
    with_content: Flag = True,
) -> dict:
    result = await store.list_attempts(
        app["id"],
        page,
        endpoint_id=endpoint_id,
        status=status,
        status_code_class=status_code_class,
        event_types=split_list(event_types),
        channel=channel,
        before=before,
        after=after,
    )
    return views.listing(result, views.attempt)


@router.get("/attempt/msg/{msg_id}", response_model=ListResponse[MessageAttemptOut])
async def list_attempts_by_msg(
    app: AppDep,
    msg_id: str,
    store: StoreDep,
    page: NewestFirstDep,
    status: Status = None,
    status_code_class: CodeClass = None,
    endpoint_id: Annotated[str | None, Query(max_length=256)] = None,
    event_types: EventTypes = None,
    channel: Channel = None,
    before: When = None,
    after: When = None,
    with_content: Flag = True,
) -> dict:
    result = await store.list_attempts(
        app["id"],
        page,
        msg_id=msg_id,
        endpoint_id=endpoint_id,
        status=status,
        status_code_class=status_code_class,
        event_types=split_list(event_types),
        channel=channel,
        before=before,
        after=after,
    )
    return views.listing(result, views.attempt)


@router.get("/msg/{msg_id}/attempt/{attempt_id}", response_model=MessageAttemptOut)
async def get_attempt(
    app: AppDep, msg_id: str, attempt_id: str, store: StoreDep
) -> MessageAttemptOut:
    return views.attempt(await store.get_attempt(app["id"], msg_id, attempt_id))


@router.delete("/msg/{msg_id}/attempt/{attempt_id}/content", status_code=204)
async def expunge_attempt_content(
    app: AppDep, msg_id: str, attempt_id: str, store: StoreDep
) -> Response:
    """Delete what the endpoint answered to this attempt (it reads ``EXPUNGED`` after)."""
    await store.expunge_attempt_content(app["id"], msg_id, attempt_id)
    return Response(status_code=204)


@router.get("/msg/{msg_id}/endpoint", response_model=ListResponse[MessageEndpointOut])
async def list_attempted_destinations(
    app: AppDep, msg_id: str, store: StoreDep, page: PageDep
) -> dict:
    return views.listing(await store.list_destinations(app["id"], msg_id, page), views.destination)


@router.get("/endpoint/{endpoint_id}/msg", response_model=ListResponse[EndpointMessageOut])
async def list_attempted_messages(
    app: AppDep,
    endpoint_id: str,
    store: StoreDep,
    page: NewestFirstDep,
    status: Status = None,
    event_types: EventTypes = None,
    channel: Channel = None,
    tag: Annotated[str | None, Query(max_length=128)] = None,
    before: When = None,
    after: When = None,
    with_content: Flag = True,
) -> dict:
    result = await store.list_attempted_messages(
        app["id"],
        endpoint_id,
        page,
        status=status,
        event_types=split_list(event_types),
        channel=channel,
        tag=tag,
        before=before,
        after=after,
    )
    return views.listing(result, lambda r: views.attempted_message(r, with_content=with_content))


@router.post("/msg/{msg_id}/endpoint/{endpoint_id}/resend", status_code=202)
async def resend_webhook(app: AppDep, msg_id: str, endpoint_id: str, store: StoreDep) -> dict:
    """Queue one manual attempt now; it shows in the attempts with triggerType 1."""
    await store.resend(app["id"], msg_id, endpoint_id)
    return {}
