"""The payload fields of an event type, read from its JSON schema, for the catalog page:
one row per field with dotted names for nested objects (``buyer.email``) and ``[]`` for
array items (``items[].price``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 8


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    description: str
    format: str
    max_length: int | None
    required: bool


def schema_fields(schema: dict[str, Any] | None) -> list[Field]:
    if not isinstance(schema, dict):
        return []
    fields: list[Field] = []
    _walk(schema, "", fields, 0)
    return fields


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind:
        return str(kind)
    if "properties" in schema:
        return "object"
    if "enum" in schema:
        return "enum"
    for combinator in ("oneOf", "anyOf", "allOf"):
        if schema.get(combinator):
            return " | ".join(_type_of(s) for s in schema[combinator] if isinstance(s, dict))
    return ""


def _format_of(schema: dict[str, Any]) -> str:
    if schema.get("format"):
        return str(schema["format"])
    if schema.get("enum"):
        return ", ".join(str(v) for v in schema["enum"])
    if schema.get("pattern"):
        return str(schema["pattern"])
    return ""


def _walk(schema: dict[str, Any], prefix: str, out: list[Field], depth: int) -> None:
    if depth >= MAX_DEPTH:
        return
    required = set(schema.get("required") or ())
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        dotted = f"{prefix}{name}"
        out.append(
            Field(
                name=dotted,
                type=_type_of(sub),
                description=str(sub.get("description") or sub.get("title") or ""),
                format=_format_of(sub),
                max_length=sub.get("maxLength") or sub.get("maxItems"),
                required=name in required,
            )
        )
        if "properties" in sub:
            _walk(sub, f"{dotted}.", out, depth + 1)
        items = sub.get("items")
        if isinstance(items, dict) and "properties" in items:
            _walk(items, f"{dotted}[].", out, depth + 1)
