"""The Store's structure: its parts define each method once (so their order cannot change
behaviour), both backends implement the whole Backend protocol, and nothing outside the
backends asks which database it is on."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from postback.store import backend as backend_module
from postback.store.backend import Backend
from postback.store.core import StoreCore
from postback.store.pg import PostgresBackend
from postback.store.sqlite import SqliteBackend
from postback.store.store import Store

SRC = Path(__file__).resolve().parents[2] / "src" / "postback"


def _own_names(cls: type) -> set[str]:
    return {n for n in vars(cls) if not (n.startswith("__") and n.endswith("__"))}


def test_no_method_is_defined_in_two_parts() -> None:
    parts = [c for c in Store.__mro__ if c not in (object,)]
    seen: dict[str, str] = {}
    doubled = []
    for cls in parts:
        for name in _own_names(cls):
            if name in seen:
                doubled.append(f"{name}: {seen[name]} and {cls.__name__}")
            seen[name] = cls.__name__
    assert not doubled, doubled
    assert "_get_endpoint" in seen and seen["_get_endpoint"] == "StoreCore"


def test_the_parts_in_any_order_make_the_same_store() -> None:
    bases = Store.__bases__
    reordered = type("Reordered", tuple(reversed(bases)), {"connect": Store.connect})
    for cls in Store.__mro__[1:-1]:
        for name in _own_names(cls):
            assert inspect.getattr_static(reordered, name) is inspect.getattr_static(Store, name), (
                name
            )


def test_every_part_derives_from_the_core() -> None:
    for cls in Store.__bases__:
        assert issubclass(cls, StoreCore), cls.__name__


def _protocol_members() -> set[str]:
    members = {n for n in vars(Backend) if not n.startswith("_")}
    members |= set(Backend.__annotations__)
    return members


@pytest.mark.parametrize("impl", [PostgresBackend, SqliteBackend])
def test_each_backend_implements_the_whole_protocol(impl: type) -> None:
    members = _protocol_members()
    assert {"write_messages", "claim", "record_successes", "listen_for_work"} <= members
    for name in members:
        assert hasattr(impl, name), f"{impl.__name__} lacks {name}"
        want = getattr(Backend, name, None)
        if inspect.isfunction(want):
            got = getattr(impl, name)
            assert inspect.iscoroutinefunction(got) == inspect.iscoroutinefunction(want), name
            assert list(inspect.signature(got).parameters) == list(
                inspect.signature(want).parameters
            ), name


# Where asking which database this is stays legitimate: choosing the backend, migrations
# (Alembic's own connection), and the column type that stores datetimes.
_ALLOWED = {
    "store/backend.py",
    "store/migrate.py",
    "store/schema.py",
    "store/engine.py",
}


def test_nothing_outside_the_backends_branches_on_the_database() -> None:
    assert (SRC / "store" / "backend.py").is_file()  # the scan below looks at the real tree
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in _ALLOWED or rel.startswith(("store/pg/", "store/sqlite/", "store/migrations/")):
            continue
        text = path.read_text()
        for n, line in enumerate(text.splitlines(), 1):
            if re.search(r"\.dialect\b|== \"postgresql\"|== \"sqlite\"", line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, offenders
    assert backend_module.backend_for.__doc__
