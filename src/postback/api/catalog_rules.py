"""What the event catalog decides at the edge: the strict catalog (POSTBACK_STRICT_CATALOG:
an event type that is not in it is a 422 naming the closest one), the product a message
names (its event type's productPath), the ordering key it names (orderingKeyPath), and
whether a reused eventId came with another
message."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from typing import Any

from postback.api.errors import FieldError
from postback.domain import decode_json
from postback.filters import lookup_path
from postback.schemas import SchemaCatalog

# Sent with the answer to a reused eventId whose event type or payload differ from the
# message first sent with it (docs/svix-compatibility.md).
EVENT_ID_CONFLICT = "postback-event-id-conflict"


def unknown_type(name: str, known: Collection[str]) -> str | None:
    """Why ``name`` is refused by a strict catalog, or None if it is in it."""
    if name in known:
        return None
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    if close:
        return f"unknown event type {name!r}; did you mean {close[0]!r}?"
    return f"unknown event type {name!r}: the catalog has no such event type"


async def check_known(
    catalog: SchemaCatalog, names: Iterable[str], loc: list[str | int], *, listed: bool
) -> None:
    """422 for the first name the catalog does not have (``listed``: ``names`` is the list
    at ``loc``, so the index is part of the place)."""
    known = await catalog.names()
    for i, name in enumerate(names):
        problem = unknown_type(name, known)
        if problem:
            raise FieldError([*loc, i] if listed else loc, problem)


def _text_at(payload: Any, path: str) -> str | None:
    """The string or whole number at ``path`` in ``payload``, as text (else None)."""
    value = lookup_path(payload, path)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


async def product_of(catalog: SchemaCatalog, event_type: str, payload: Any) -> str | None:
    """The product a message names: the value at its event type's productPath, if that is
    a string or a whole number."""
    path = await catalog.product_path(event_type)
    text = None if path is None else _text_at(payload, path)
    return text if text is not None and 0 < len(text) <= 128 else None


async def ordering_key_of(catalog: SchemaCatalog, event_type: str, payload: Any) -> str | None:
    """The ordering key a message names in its payload: the string or whole number at its
    event type's orderingKeyPath (nothing there, or another kind of value: no key). One
    over 256 characters is a 422 naming the payload's field, as ``orderingKey`` would be."""
    path = await catalog.ordering_key_path(event_type)
    text = None if path is None else _text_at(payload, path)
    if text is None:
        return None
    if len(text) > 256:
        loc: list[str | int] = ["body", "payload", *path.split(".")]
        raise FieldError(
            loc,
            f"the ordering key at {path} (the orderingKeyPath of {event_type}) is longer "
            "than 256 characters",
        )
    return text or None


def same_message(row: dict[str, Any], event_type: str, payload: Any) -> bool | None:
    """Whether the stored message of a reused eventId is the one sent again (None: its
    payload is no longer kept, so nobody can tell)."""
    if row["event_type"] != event_type:
        return False
    if not row.get("payload"):
        return None
    return bool(decode_json(row["payload"]) == payload)
