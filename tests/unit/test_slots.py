"""The worker's capacity (postback.delivery.slots)."""

from __future__ import annotations

import asyncio

import pytest

from postback.delivery.slots import Slots


async def test_a_waiter_wakes_when_a_slot_is_given_back() -> None:
    slots = Slots(2)
    slots.take(2)
    assert slots.free == 0 and slots.held == 2
    waiter = asyncio.create_task(slots.wait_free())
    await asyncio.sleep(0.01)
    assert not waiter.done()  # full: it waits
    slots.give_back(1)
    await asyncio.wait_for(waiter, 5)
    assert slots.free == 1


async def test_wake_releases_a_waiter_for_good() -> None:
    slots = Slots(1)
    slots.take(1)
    waiter = asyncio.create_task(slots.wait_free())
    await asyncio.sleep(0.01)
    slots.wake()
    await asyncio.wait_for(waiter, 5)
    await asyncio.wait_for(slots.wait_free(), 5)  # still full, but stopping: no wait
    assert slots.free == 0


def test_the_count_cannot_go_wrong() -> None:
    slots = Slots(3)
    with pytest.raises(RuntimeError):
        slots.take(4)
    slots.take(3)
    with pytest.raises(RuntimeError):
        slots.give_back(4)
    slots.give_back(3)
    assert slots.free == 3
    with pytest.raises(ValueError):
        Slots(-1)
    assert Slots(0).free == 0  # a worker that sends nothing (worker_concurrency 0)
