"""/api/v1/app/{app_id}/events: pull instead of push. The application's messages in a
stable order with a cursor that never skips or repeats one (see store/events.py), as pages
to poll or as a Server-Sent Events stream that resumes from ``Last-Event-ID``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Header, Query, Request
from fastapi.responses import StreamingResponse

from postback.api import views
from postback.api.deps import AppDep, SettingsDep, StoreDep, bearer_token, split_list
from postback.api.errors import FieldError
from postback.api.routing import SlashRouter
from postback.api.wire.messages import EventListOut
from postback.store.errors import is_outage
from postback.store.events import BadCursor, parse_cursor
from postback.store.pages import MAX_LIMIT

router = SlashRouter(prefix="/api/v1/app/{app_id}/events", tags=["Events"])

EventTypesQuery = Annotated[list[str] | None, Query(max_length=100)]
CursorQuery = Annotated[str | None, Query(max_length=64)]
ChannelQuery = Annotated[str | None, Query(max_length=128)]
KEEP_ALIVE = 15.0  # seconds between comments on an idle stream, so proxies keep it open
OUTAGE_PAUSE = 1.0


def _cursor(loc: list[str | int], value: str | None) -> str | None:
    try:
        parse_cursor(value)
    except BadCursor as exc:
        raise FieldError(loc, str(exc)) from None
    return value


@router.get("/", response_model=EventListOut)
async def poll_events(
    app: AppDep,
    store: StoreDep,
    after: CursorQuery = None,
    iterator: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    event_types: EventTypesQuery = None,
    channel: ChannelQuery = None,
) -> dict[str, Any]:
    """Messages after the cursor (``after``, or ``iterator`` as in every Svix list), oldest
    first. Keep the returned ``iterator`` and ask again with it: a message committed late
    still comes after it, never before."""
    if after and iterator and after != iterator:
        raise FieldError(["query", "after"], "give the cursor as after or iterator, not both")
    start = _cursor(["query", "after" if after else "iterator"], after or iterator)
    rows, cursor = await store.poll_events(
        app["id"], start, limit, event_types=split_list(event_types), channel=channel
    )
    return {
        "data": [views.message(r).model_dump() | {"cursor": r["cursor"]} for r in rows],
        "iterator": cursor,
        "prevIterator": None,
        "done": len(rows) < limit,
    }


@router.get("/stream", response_class=StreamingResponse)
async def stream_events(
    app: AppDep,
    store: StoreDep,
    settings: SettingsDep,
    request: Request,
    after: CursorQuery = None,
    event_types: EventTypesQuery = None,
    channel: ChannelQuery = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """The same feed as Server-Sent Events: each message is an event whose ``id`` is its
    cursor, so a client that reconnects (sending ``Last-Event-ID``) misses nothing."""
    start = _cursor(["header", "last-event-id"], last_event_id) or _cursor(
        ["query", "after"], after
    )
    types = split_list(event_types)
    pause = min(settings.poll_interval, 0.5)
    token = bearer_token(request)

    async def feed() -> AsyncIterator[bytes]:
        cursor, idle = start, 0.0
        yield b"retry: 2000\n\n"
        while not await request.is_disconnected():
            try:
                rows, after_rows = await store.poll_events(
                    app["id"], cursor, 100, event_types=types, channel=channel
                )
                # The token is asked again before anything is sent: a stream ends with
                # its token (logout, expire-all, revocation, expiry), within the token
                # cache's few seconds when that happened in another process.
                allowed = await store.authenticate(token) is not None
            except Exception as exc:
                if not is_outage(exc):
                    raise
                # The database is restarting: keep the stream and the cursor, try again.
                await asyncio.sleep(OUTAGE_PAUSE)
                continue
            if not allowed:
                yield b": the token was revoked or has expired\n\n"
                return
            cursor = after_rows
            for row in rows:
                data = views.message_json(row)
                yield b"id: %s\ndata: %s\n\n" % (row["cursor"].encode(), data)
            if len(rows) == 100:
                continue
            idle = 0.0 if rows else idle + pause
            if idle >= KEEP_ALIVE:
                idle = 0.0
                yield b": keep-alive\n\n"
            await asyncio.sleep(pause)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(feed(), media_type="text/event-stream", headers=headers)
