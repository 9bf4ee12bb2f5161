"""Background work started by a request, kept alive until it ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from fastapi import Request

log = logging.getLogger("postback.tasks")


def run_in_background(request: Request, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Start ``work`` after the response; the app holds a reference (asyncio keeps only weak
    ones) and a failure is logged, while the task row records it for the caller."""
    running: set[asyncio.Task[Any]] = request.app.state.background
    task = asyncio.create_task(work)
    running.add(task)

    def done(t: asyncio.Task[Any]) -> None:
        running.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("background task failed: %s", t.exception())

    task.add_done_callback(done)
    return task
