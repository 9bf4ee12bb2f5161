"""What the store tests share: a settable clock for the store."""

from __future__ import annotations

from datetime import datetime

import pytest

from postback.store.store import Store


@pytest.fixture
def clock(request: pytest.FixtureRequest, store: Store) -> list[datetime]:
    """The store's clock, settable (``clock[0] = …``), starting at the test module's NOW."""
    now = [request.module.NOW]
    store.clock = lambda: now[0]
    return now
