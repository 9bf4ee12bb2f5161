"""Fixtures of the CLI tests: an application made with the real command."""

from __future__ import annotations

import pytest

from tests.support.cli import ok_json
from tests.support.server import ServerHandle


@pytest.fixture
def app_id(server: ServerHandle) -> str:
    return ok_json(server, "app", "create", "Acme", "--uid", "acme")["id"]
