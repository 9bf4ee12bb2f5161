"""The portal's message log, message pages (payload, every attempt, resend) and the event
catalog with each event type's payload fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from postback.api.wire.common import SENSITIVE_HEADERS
from postback.domain import MessageStatus, decode_json
from postback.examples import NoSuchExample, example_payload, latest_schema
from postback.store.pages import Page
from postback.web.auth import checked_form
from postback.web.portal import PortalViewer, all_event_types, page, store_of
from postback.web.render import WebRoute, see_other
from postback.web.schema_fields import schema_fields

router = APIRouter(prefix="/portal", route_class=WebRoute, include_in_schema=False)
STATUSES = {s.text: s for s in (MessageStatus.SUCCESS, MessageStatus.PENDING, MessageStatus.FAIL)}


def _day(text: str, *, end: bool = False) -> datetime | None:
    """A date field (YYYY-MM-DD) as the start of that day, or of the next one for ``end``."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return day.replace(hour=23, minute=59, second=59, microsecond=999999) if end else day


@router.get("/messages")
async def message_log(
    request: Request,
    viewer: PortalViewer,
    event_type: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
    iterator: str | None = None,
) -> Response:
    store = store_of(request)
    result = await store.message_log(
        viewer.app_id or "",
        Page(limit=50, iterator=iterator, descending=True),
        event_type=event_type or None,
        status=STATUSES.get(status),
        after=_day(since),
        before=_day(until, end=True),
    )
    filters = {"event_type": event_type, "status": status, "since": since, "until": until}
    return await page(
        request,
        viewer,
        "portal/messages.html",
        messages=result.rows,
        more=None if result.done else result.iterator,
        filters=filters,
        statuses=list(STATUSES),
        catalog=await all_event_types(store),
    )


@router.get("/messages/{msg_id}")
async def message_page(
    request: Request, viewer: PortalViewer, msg_id: str, notice: str = ""
) -> Response:
    store, app_id = store_of(request), viewer.app_id or ""
    msg = await store.get_message(app_id, msg_id)
    payload = decode_json(msg["payload"]) if msg.get("payload") else None
    destinations = await store.list_destinations(app_id, msg["id"], Page(limit=250))
    attempts = await store.list_attempts(app_id, Page(limit=250, descending=True), msg_id=msg["id"])
    endpoints = {d["id"]: d for d in destinations.rows}
    waiting = any(
        d["status"] in (MessageStatus.PENDING, MessageStatus.SENDING)
        and d["next_attempt_at"] is not None
        for d in destinations.rows
    )
    return await page(
        request,
        viewer,
        "portal/message.html",
        msg=msg,
        payload=payload,
        destinations=destinations.rows,
        attempts=[
            a | {"headers": _sent_headers(msg, endpoints.get(a["endpoint_id"]))}
            for a in attempts.rows
        ],
        waiting=waiting,
        notice=notice,
        status_text=lambda s: MessageStatus(s).text,
    )


def _sent_headers(msg: dict[str, Any], endpoint: dict[str, Any] | None) -> dict[str, str]:
    """The request headers an attempt carried that do not change between attempts. The
    timestamp and signature differ on every try and are not stored."""
    headers = {"content-type": "application/json", "webhook-id": msg["id"], "svix-id": msg["id"]}
    for name, value in ((endpoint or {}).get("headers") or {}).items():
        headers[name] = "••••" if name.lower() in SENSITIVE_HEADERS else value
    return headers


@router.post("/messages/{msg_id}/resend/{endpoint_id}")
async def resend(request: Request, viewer: PortalViewer, msg_id: str, endpoint_id: str) -> Response:
    await checked_form(request, viewer)
    await store_of(request).resend(viewer.app_id or "", msg_id, endpoint_id)
    return see_other(f"/portal/messages/{msg_id}?notice=resent")


@router.get("/catalog")
async def catalog(request: Request, viewer: PortalViewer) -> Response:
    entries = []
    for et in await all_event_types(store_of(request)):
        try:
            example = example_payload(et)
        except NoSuchExample:
            example = None
        entries.append(
            {"event_type": et, "fields": schema_fields(latest_schema(et)), "example": example}
        )
    return await page(request, viewer, "portal/catalog.html", entries=entries)
