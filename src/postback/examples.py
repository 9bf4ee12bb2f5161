"""Example payloads for test events: the schema's own ``examples``, else one built from it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from postback.schemas import latest_schema as newest_schema

MAX_DEPTH = 8


class NoSuchExample(ValueError):
    pass


def latest_schema(event_type: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of the newest version (``{"1": {...}, "2": {...}}`` → version 2)."""
    return newest_schema(event_type.get("schemas"))


def example_payload(event_type: dict[str, Any], index: int = 0) -> dict[str, Any]:
    schema = latest_schema(event_type)
    examples = (schema or {}).get("examples") or []
    if examples:
        if index >= len(examples):
            raise NoSuchExample(f"the event type has {len(examples)} examples")
        return examples[index]
    if index:
        raise NoSuchExample("the event type has no examples")
    built = build_example(schema) if schema else None
    return built if isinstance(built, dict) else {"eventType": event_type["name"]}


def build_example(schema: dict[str, Any], depth: int = 0) -> Any:
    """A value that fits ``schema``, preferring what the schema itself suggests."""
    for hint in ("const", "default"):
        if hint in schema:
            return schema[hint]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("oneOf", "anyOf", "allOf"):
        if schema.get(combinator):
            return build_example(schema[combinator][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        if depth >= MAX_DEPTH:
            return {}
        props = schema.get("properties", {})
        return {name: build_example(sub, depth + 1) for name, sub in props.items()}
    if kind == "array":
        items = schema.get("items")
        return [build_example(items, depth + 1)] if items and depth < MAX_DEPTH else []
    if kind == "string":
        return _string(schema)
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + 1 if "exclusiveMinimum" in schema else low
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    return None


def _string(schema: dict[str, Any]) -> str:
    formats = {
        "date-time": datetime(2026, 1, 1, 12, 0, tzinfo=UTC).isoformat(),
        "date": "2026-01-01",
        "email": "buyer@example.com",
        "uri": "https://example.com",
        "uuid": "00000000-0000-4000-8000-000000000000",
    }
    value = formats.get(schema.get("format", ""), "string")
    low = schema.get("minLength", 0)
    if len(value) < low:
        value = value + "x" * (low - len(value))
    high = schema.get("maxLength")
    return value[:high] if high is not None else value
