"""Slots: the worker's capacity for claims, as one counter with a wake-up.

A worker holds at most ``capacity`` claims at once: those being sent, waiting for a sender,
or sent and waiting to be recorded. A slot is taken when a claim arrives and given back
once its attempt is written (or the claim is handed back): if sending outran recording,
results would pile up in memory until their leases ran out and other workers resent them.
"""

from __future__ import annotations

import asyncio


class Slots:
    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("a worker's capacity cannot be negative")
        self.capacity = capacity
        self._held = 0
        self._freed = asyncio.Event()
        self._woken = False

    @property
    def held(self) -> int:
        return self._held

    @property
    def free(self) -> int:
        return self.capacity - self._held

    def take(self, count: int) -> None:
        """``count`` claims arrived (a claim never asks for more than ``free``)."""
        if count > self.free:
            raise RuntimeError(f"{count} claims taken with {self.free} slots free")
        self._held += count

    def give_back(self, count: int) -> None:
        """``count`` claims are done with (recorded, released or lost)."""
        if count > self._held:
            raise RuntimeError(f"{count} slots given back with {self._held} held")
        self._held -= count
        self._freed.set()

    async def wait_free(self) -> None:
        """Until a slot is free, or ``wake`` is called (the worker is stopping)."""
        while self.free <= 0 and not self._woken:
            self._freed.clear()
            await self._freed.wait()

    def wake(self) -> None:
        """Release whoever waits in ``wait_free``, for good (the worker is stopping)."""
        self._woken = True
        self._freed.set()
