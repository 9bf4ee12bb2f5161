"""Fixtures shared by the whole suite: a fresh database of each kind per test (a copy of a
template migrated once per session, see tests/support/databases.py), a real postback server
(uvicorn, API + worker) on a loopback port, and a scripted loopback receiver."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from postback.store.store import Store
from tests.support import databases, http_clients
from tests.support.databases import create_db as _create_db
from tests.support.databases import drop_db as _drop_db
from tests.support.databases import with_database as _with_database
from tests.support.receivers import Receiver
from tests.support.server import (
    SECRET_BOX,
    SECRET_KEY,
    TOKEN,
    ServerHandle,
    run_sync,
    server_settings,
)

# Older imports (`from tests.conftest import ServerHandle`) keep working.
__all__ = [
    "SECRET_BOX",
    "SECRET_KEY",
    "TOKEN",
    "ServerHandle",
    "_create_db",
    "_drop_db",
    "_with_database",
    "run_sync",
    "server_settings",
]


http_clients.install()  # one TLS context for the test process's httpx clients

# Run first: on a fresh machine the container image's tests make its Debian base and build
# it (minutes, mostly downloading and unpacking); started first, on one of the two workers
# (`make test`), that overlaps the rest of the suite instead of ending it.
FIRST = ("tests/e2e/test_image.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(FIRST))  # stable: else as found


# ---- PostgreSQL: which server --------------------------------------------------------


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """POSTBACK_TEST_DATABASE_URL, else the server on 127.0.0.1:5432, else a throwaway one
    from the pgserver wheel. Never a skip: with no PostgreSQL the suite fails loudly."""
    explicit = os.environ.get("POSTBACK_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    # POSTBACK_TEST_PG=pgserver forces the throwaway server (to test that path).
    if os.environ.get("POSTBACK_TEST_PG") != "pgserver" and run_sync(_answers(local)):
        yield local
        return
    # PostgreSQL binaries shipped in a wheel
    with databases.own_cluster("postback-test-pg-") as server:
        yield server.get_uri()


# ---- databases: migrated once per session, copied per test -----------------------------


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """A PostgreSQL database migrated to this tree's head, unique to this run."""
    name = run_sync(databases.build_pg_template(pg_admin_url))
    try:
        yield name
    finally:
        run_sync(databases.drop_db(pg_admin_url, name))


@pytest.fixture(scope="session")
def pg_clones(pg_admin_url: str, pg_template: str) -> Iterator[databases.PgClones]:
    """Copies of the template, made ahead of the tests and dropped behind them."""
    clones = databases.PgClones(pg_admin_url, pg_template)
    try:
        yield clones
    finally:
        clones.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to this tree's head."""
    path = tmp_path_factory.mktemp("template") / "postback.db"
    return run_sync(databases.build_sqlite_template(path))


def _fresh_database(
    request: pytest.FixtureRequest, tmp_path: Path, migrated: bool
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "postback.db"
        if migrated:
            yield databases.clone_sqlite(request.getfixturevalue("sqlite_template"), path)
        else:
            yield f"sqlite:///{path}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    if migrated:
        clones: databases.PgClones = request.getfixturevalue("pg_clones")
        name = clones.take()
        try:
            yield databases.with_database(admin, name)
        finally:
            clones.give_back(name)
        return
    name = databases.new_name()
    run_sync(databases.create_db(admin, name))
    try:
        yield databases.with_database(admin, name)
    finally:
        run_sync(databases.drop_db(admin, name))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each kind, already migrated to head (a copy of the template)."""
    yield from _fresh_database(request, tmp_path, migrated=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind: for tests that run the migrations themselves."""
    yield from _fresh_database(request, tmp_path, migrated=False)


@pytest.fixture
async def store(database_url: str) -> Any:
    s = Store.connect(database_url, secret_box=SECRET_BOX)
    try:
        yield s
    finally:
        await s.close()


# ---- a running server ----------------------------------------------------------------


@pytest.fixture
def make_server(database_url: str) -> Iterator[Callable[..., ServerHandle]]:
    started: list[ServerHandle] = []

    def make(**overrides: Any) -> ServerHandle:
        settings = server_settings(database_url, **overrides)
        handle = ServerHandle(settings, migrated=True).start()  # database_url is a copy
        started.append(handle)
        return handle

    yield make
    for handle in started:
        handle.stop()


@pytest.fixture
def server(make_server: Callable[..., ServerHandle]) -> ServerHandle:
    return make_server()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on 127.0.0.1 (tests/support/receivers.py), scripted per path."""
    with Receiver() as r:
        yield r
