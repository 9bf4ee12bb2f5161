"""Operations shared by the API and the web UI, so neither holds logic the other repeats."""

from __future__ import annotations

from typing import Any

from postback.domain import encode_json
from postback.examples import example_payload
from postback.signing import generate_ed25519_secret, generate_secret, is_asymmetric
from postback.store.errors import NotFound
from postback.store.store import Store

Row = dict[str, Any]


class UnknownEventType(LookupError):
    """A test event named an event type the catalog does not have."""


async def send_test_event(
    store: Store,
    app_id: str,
    endpoint_id: str,
    event_type: str,
    *,
    payload: Any = None,
    example_index: int = 0,
) -> Row:
    """A test message to one endpoint alone: ``payload``, or the event type's example.
    Raises NotFound (the endpoint), UnknownEventType and NoSuchExample."""
    ep = await store.get_endpoint(app_id, endpoint_id)
    if payload is None:
        try:
            known = await store.get_event_type(event_type)
        except NotFound:
            raise UnknownEventType(f"no event type {event_type!r}") from None
        payload = example_payload(known, example_index)
    values = {"event_type": event_type, "payload": encode_json(payload), "tags": ["test"]}
    row, _ = await store.create_message(app_id, values, only_endpoint=ep["id"])
    return row


async def rotate_endpoint_secret(
    store: Store, app_id: str, endpoint_id: str, grace_seconds: float, key: str | None = None
) -> str:
    """A new signing secret; the old one keeps signing beside it for ``grace_seconds``.
    Without ``key``, one of the same kind as the current secret (HMAC or ed25519)."""
    if key is None:
        current = await store.get_endpoint(app_id, endpoint_id)
        key = generate_ed25519_secret() if is_asymmetric(current["secret"]) else generate_secret()
    await store.rotate_secret(app_id, endpoint_id, key, grace_seconds)
    return key
