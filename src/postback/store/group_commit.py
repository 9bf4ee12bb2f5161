"""Group commit: messages accepted at the same time are written in one transaction.

A caller's message joins a queue; one flusher at a time writes everything queued in one
batch and answers each caller once that batch has committed. Under load a batch holds
whatever arrived while the previous one was being written; alone, a message is a batch of
one, so nothing waits for a batch to fill. Nothing is acknowledged before the commit that
makes it durable. The databases' own batch writers are in sqlite/ingest.py and
pg/ingest.py; each reports, per message, ``None`` (written), ``SEEN`` (its eventId was used
before) or the exception that message alone raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

SEEN = object()  # the outcome of a message whose eventId was used before


class GroupCommit(Generic[T]):
    def __init__(self, write: Callable[[list[T]], Awaitable[list[Any]]]) -> None:
        self._write = write
        self._queue: list[tuple[T, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> Any:
        """``item``'s outcome once its batch is written; raises what its batch raised."""
        done = asyncio.get_running_loop().create_future()
        done.add_done_callback(_seen)
        self._queue.append((item, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # shield: a caller that goes away (a client disconnecting) does not take the
        # batch's answer with it; its message is written or not with the batch.
        return await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                outcomes = await self._write([item for item, _ in batch])
            except BaseException as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, done), outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    done.set_exception(outcome)
                else:
                    done.set_result(outcome)


def _seen(done: asyncio.Future[Any]) -> None:
    """Marks a batch's error as seen even when its caller went away before it came: the
    caller's request is gone, and asyncio would otherwise log it as never retrieved."""
    if not done.cancelled():
        done.exception()
