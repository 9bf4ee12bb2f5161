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
from postback.web.i18n_catalog import in_language
from postback.web.portal import PortalViewer, all_event_types, page, store_of
from postback.web.render import WebRoute, language, see_other
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
    ref: str = "",
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
        ref=ref.strip()[:256] or None,
    )
    filters = {
        "event_type": event_type,
        "status": status,
        "since": since,
        "until": until,
        "ref": ref.strip(),
    }
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
async def catalog(request: Request, viewer: PortalViewer, q: str = "") -> Response:
    """Every event type, grouped (``groupName``, else the name's first part); those ``q``
    does not match are in the page but hidden, as the page's script hides them."""
    words, lang = q.lower().split(), language(request)
    groups: dict[str, list[dict[str, Any]]] = {}
    for et in await all_event_types(store_of(request)):
        try:
            example = example_payload(et)
        except NoSuchExample:
            example = None
        description = in_language(et.get("description") or "", et.get("descriptions"), lang)
        search = " ".join((et["name"], et.get("group_name") or "", description)).lower()
        entry = {
            "event_type": et,
            "description": description,
            "fields": schema_fields(latest_schema(et)),
            "example": example,
            "search": search,
            "match": all(w in search for w in words),
        }
        groups.setdefault(_group_of(et), []).append(entry)
    shown = sorted(groups.items(), key=lambda g: (g[0] == "", g[0]))
    return await page(
        request,
        viewer,
        "portal/catalog.html",
        q=q,
        groups=[
            {"name": name, "entries": entries, "shown": any(e["match"] for e in entries)}
            for name, entries in shown
        ],
        total=sum(len(entries) for entries in groups.values()),
        shown=sum(e["match"] for entries in groups.values() for e in entries),
    )


def _group_of(event_type: dict[str, Any]) -> str:
    """``groupName``, else what comes before the first dot of a dotted name ("" if none)."""
    name = event_type["name"]
    return event_type.get("group_name") or (name.split(".")[0] if "." in name else "")
