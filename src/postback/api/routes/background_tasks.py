"""/api/v1/background-task: progress of long operations (recover)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from postback.api import views
from postback.api.deps import PageDep, StoreDep
from postback.api.routing import SlashRouter
from postback.api.wire.background_tasks import BackgroundTaskOut
from postback.api.wire.common import ListResponse

router = SlashRouter(prefix="/api/v1/background-task", tags=["Background Task"])


@router.get("/", response_model=ListResponse[BackgroundTaskOut])
async def list_background_tasks(
    store: StoreDep,
    page: PageDep,
    status: Annotated[str | None, Query(pattern="^(running|finished|failed)$")] = None,
    task: Annotated[str | None, Query(max_length=64)] = None,
) -> dict:
    result = await store.list_tasks(page, status=status, task=task)
    return views.listing(result, BackgroundTaskOut.model_validate)


@router.get("/{task_id}", response_model=BackgroundTaskOut)
async def get_background_task(task_id: str, store: StoreDep) -> BackgroundTaskOut:
    return BackgroundTaskOut.model_validate(await store.get_task(task_id))
