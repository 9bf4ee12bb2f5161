"""/api/v1/stats: usage statistics of the whole server, computed as background tasks (read
them at /api/v1/background-task/{id}), as Svix computes them."""

from __future__ import annotations

from fastapi import Request

from postback.api.deps import StoreDep
from postback.api.errors import FieldError
from postback.api.routing import SlashRouter
from postback.api.tasks import run_in_background
from postback.api.wire.background_tasks import (
    AggregateEventTypesOut,
    AppUsageStatsIn,
    AppUsageStatsOut,
)

router = SlashRouter(prefix="/api/v1/stats", tags=["Statistics"])


@router.post("/usage/app", response_model=AppUsageStatsOut, status_code=202)
async def aggregate_app_stats(
    body: AppUsageStatsIn, store: StoreDep, request: Request
) -> AppUsageStatsOut:
    """Each application's message destinations (deliveries, canceled ones aside) created in
    the window: ``data.appStats`` of the task, ``[{appId, appUid, messageDestinations}]``."""
    task, unresolved = await store.start_app_stats(body.since, body.until, body.app_ids)
    if task is None:
        raise FieldError(["body", "appIds"], "none of the given appIds is an application")
    run_in_background(request, store.run_app_stats(task["id"]))
    return AppUsageStatsOut.model_validate(task | {"unresolved_app_ids": unresolved})


@router.put("/usage/event-types", response_model=AggregateEventTypesOut, status_code=202)
async def aggregate_event_types(store: StoreDep, request: Request) -> AggregateEventTypesOut:
    """Per application: the event types its endpoints subscribe to by name, and whether one
    takes every event type (``data.event_types`` of the task)."""
    task = await store.start_event_type_aggregate()
    run_in_background(request, store.run_event_type_aggregate(task["id"]))
    return AggregateEventTypesOut.model_validate(task)
