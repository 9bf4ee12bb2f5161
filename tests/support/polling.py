"""One way to wait in tests: poll a check until it holds or a deadline passes.

The machine the suite runs on may be busy, so the default deadline is generous; a check
that holds returns at once, so a generous deadline costs nothing when all is well. On
failure the message says what was awaited and shows the last value the check returned
(or the exception it raised), which is usually the clue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT = 30.0  # seconds
INTERVAL = 0.05


class NotYet(AssertionError):
    """The check did not hold before the deadline."""


def _failure(what: str, timeout: float, last: object, error: BaseException | None) -> NotYet:
    seen = f"last raised {error!r}" if error is not None else f"last returned {last!r}"
    text = f"{what or 'condition'} not reached within {timeout:g}s; {seen}"
    return NotYet(text[:4000])


def eventually(
    check: Callable[[], T],
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    what: str = "",
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` until it returns something truthy, and return that. An exception of a
    type in ``retry_on`` counts as "not yet"; any other propagates at once."""
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            last, error = check(), None
        except retry_on as exc:
            last, error = None, exc
        if error is None and last:
            return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, last, error)
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], Awaitable[T] | T],
    timeout: float = TIMEOUT,  # noqa: ASYNC109 (a deadline between tries, not a cancel scope)
    interval: float = INTERVAL,
    what: str = "",
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """``eventually`` for async tests: ``check`` may be a coroutine function or a plain
    function (one that reads another thread's state); the loop keeps running between tries."""
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            value = check()
            if isinstance(value, Awaitable):
                value = await value
            last, error = value, None
        except retry_on as exc:
            last, error = None, exc
        if error is None and last:
            return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, last, error)
        await asyncio.sleep(interval)
