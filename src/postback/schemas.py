"""Payload validation against event-type JSON Schemas (draft 2020-12 unless a schema says
otherwise). Each schema is compiled once (jsonschema-rs, native code) and kept until its
event type changes; the catalog is re-read at most every ``ttl`` seconds, which is how
long a schema edited through another process takes to apply here.

Schemas are self-contained: a ``$ref`` must point inside its own document (``#...``), and
the schema library is never allowed to fetch one, neither over HTTP (a request to any
address, past the SSRF guard, that could hold the event loop) nor from ``file://`` (whose
errors tell which files exist). A schema saved before this rule compiles with every fetch
refused, and is then not enforced."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, KeysView
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

MAX_ERRORS = 10


@dataclass(frozen=True)
class Violation:
    path: list[str | int]  # where in the payload
    rule: str  # where in the schema, e.g. properties/amount/minimum
    message: str


class SchemaError(ValueError):
    """A schema that is not a valid JSON Schema."""


# Keywords holding references, and keywords whose values are data, not schemas (a "$ref"
# key inside an example is just a key).
REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")
DATA = frozenset({"const", "enum", "examples", "default", "example"})


def _no_fetch(uri: str) -> Any:
    raise SchemaError(f"{uri} is outside the schema: references are not fetched")


def compile_schema(schema: dict[str, Any]) -> Any:
    """A validator for ``schema``, resolving references only within the document."""
    return jsonschema_rs.validator_for(schema, retriever=_no_fetch)


def _outside_reference(schema: Any) -> str | None:
    """Where the first reference that leaves its document is (a JSON pointer), if any."""
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{where}/{key}"
                if key in REFERENCES and isinstance(value, str) and not value.startswith("#"):
                    return here
                if key not in DATA:
                    stack.append((value, here))
        elif isinstance(node, list):
            stack.extend((item, f"{where}/{i}") for i, item in enumerate(node))
    return None


def check_schemas(schemas: dict[str, Any]) -> dict[str, Any]:
    """The ``schemas`` of an event type as it is saved: ``{version: JSON Schema}``."""
    for version, schema in schemas.items():
        if not isinstance(schema, dict):
            raise SchemaError(f"{version}: a schema is a JSON object")
        outside = _outside_reference(schema)
        if outside is not None:
            raise SchemaError(
                f"{version}: {outside} must refer inside this schema (start with #): "
                "schemas are self-contained and references are never fetched"
            )
        try:
            compile_schema(schema)
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else "not a valid JSON Schema"
            raise SchemaError(f"{version}: {first}") from None
    return schemas


def latest_schema(schemas: dict[str, Any] | None) -> dict[str, Any] | None:
    """The newest version of an event type's schema ("2" beats "1"; "10" beats "9")."""
    if not schemas:
        return None
    version = max(schemas, key=lambda v: (v.isascii() and v.isdigit(), _number(v), v))
    schema = schemas[version]
    return schema if isinstance(schema, dict) else None


def _number(version: str) -> int:
    return int(version) if version.isascii() and version.isdigit() else 0


def violations(validator: Any, payload: Any) -> list[Violation]:
    found = []
    for error in validator.iter_errors(payload):
        rule = "/".join(str(p) for p in error.schema_path)
        found.append(Violation(list(error.instance_path), rule, error.message))
        if len(found) == MAX_ERRORS:
            break
    return found


@dataclass
class _Entry:
    stamp: Any  # (updated_at, validated?): recompile when it moves
    validator: Any | None  # None: this event type is not validated
    product_path: str | None = None  # where its payloads name the product
    ordering_key_path: str | None = None  # where they name their ordering key


class SchemaCatalog:
    """The live catalog as ingest sees it: which event types exist, where each one's
    payloads name the product and their ordering key, and which are validated, with their
    compiled validators."""

    def __init__(
        self,
        load: Callable[[], Awaitable[Iterable[dict[str, Any]]]],
        *,
        validate_by_default: bool,
        ttl: float = 2.0,
    ) -> None:
        self._load = load
        self._default = validate_by_default
        self._ttl = ttl
        self._entries: dict[str, _Entry] = {}
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def check(self, event_type: str, payload: Any) -> list[Violation]:
        """What is wrong with ``payload`` for ``event_type`` (empty: nothing, or the event
        type is not validated)."""
        entry = (await self._current()).get(event_type)
        if entry is None or entry.validator is None:
            return []
        return violations(entry.validator, payload)

    async def names(self) -> KeysView[str]:
        """The names of the live (unarchived) event types."""
        return (await self._current()).keys()

    async def product_path(self, event_type: str) -> str | None:
        entry = (await self._current()).get(event_type)
        return None if entry is None else entry.product_path

    async def ordering_key_path(self, event_type: str) -> str | None:
        entry = (await self._current()).get(event_type)
        return None if entry is None else entry.ordering_key_path

    async def _current(self) -> dict[str, _Entry]:
        if time.monotonic() - self._loaded_at > self._ttl:
            await self._refresh()
        return self._entries

    async def _refresh(self) -> None:
        rows = await self._load()
        self._loaded_at = time.monotonic()
        entries: dict[str, _Entry] = {}
        for row in rows:
            wanted = row["validate_payloads"]
            wanted = self._default if wanted is None else wanted
            stamp = (row["updated_at"], wanted)
            old = self._entries.get(row["name"])
            if old is not None and old.stamp == stamp:
                entries[row["name"]] = old
                continue
            path = row.get("product_path")
            schema = latest_schema(row["schemas"]) if wanted else None
            validator = None
            if schema is not None:
                try:
                    validator = compile_schema(schema)
                except (jsonschema_rs.ValidationError, ValueError):
                    validator = None  # saved before schemas were checked: not enforced
            entries[row["name"]] = _Entry(stamp, validator, path, row.get("ordering_key_path"))
        self._entries = entries
