"""Which endpoints a message goes to, and the delivery row each one gets: pure functions,
shared by the general path (messages.py) and both databases' batch writers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from postback import ids
from postback.domain import (
    MessageStatus,
    TriggerType,
    decode_json,
    endpoint_wants,
    queue_times,
)
from postback.filters import compile_filter, project

Row = dict[str, Any]
_UNPARSED = object()


class Routable(Protocol):
    """What routing reads of an endpoint: its id and routing columns."""

    id: str
    event_types: Any
    channels: Any
    payload_filter: Any
    projection: Any
    ordered: bool


class RoutedEndpoint:
    """An endpoint as the batch writers read it from a driver's row: its id and routing
    columns, JSON given as text (decoded here) or already decoded, and whether it is
    ordered."""

    __slots__ = ("channels", "event_types", "id", "ordered", "payload_filter", "projection")

    def __init__(self, ep_id: str, *routing: Any) -> None:
        self.id = ep_id
        *rules, ordered = routing
        self.ordered = bool(ordered)
        self.event_types, self.channels, self.payload_filter, self.projection = (
            json.loads(v) if isinstance(v, str) else v for v in rules
        )


def route(row: Row, endpoints: Iterable[Routable], *, everyone: bool = False) -> list[Row]:
    """One delivery per endpoint that wants the message (``everyone``: each endpoint
    given, whatever its subscriptions and filter). An endpoint whose payload filter says no
    gets a canceled delivery that says why (the message's destinations show it); one with
    a projection gets its own body; one that is ordered, the message's ordering key ('' for
    none) and place (its ``seq``, when the caller knows it)."""
    now, deliver_at = row["created_at"], row["deliver_at"]
    due = deliver_at if deliver_at and deliver_at > now else now
    deliveries, doc = [], _UNPARSED
    for ep in endpoints:
        if not everyone and not endpoint_wants(
            ep.event_types, ep.channels, row["event_type"], row["channels"]
        ):
            continue
        delivery = new_delivery(row["id"], ep.id, row["app_id"], due, now)
        if ep.ordered:
            delivery["ordering_key"] = row.get("ordering_key") or ""
            delivery["seq"] = row.get("seq")
        if ep.payload_filter or ep.projection:
            if doc is _UNPARSED:
                doc = decode_json(row["payload"]) if row["payload"] else {}
            why = None
            if ep.payload_filter and not everyone:
                why = compile_filter(ep.payload_filter)(doc)
            if why is not None:
                delivery.update(
                    status=MessageStatus.CANCELED, next_attempt_at=None, wake_at=None, note=why
                )
            elif ep.projection:
                delivery["payload"] = project(doc, ep.projection)
        deliveries.append(delivery)
    return deliveries


def new_delivery(msg_id: str, ep_id: str, app_id: str, due: datetime, now: datetime) -> Row:
    """A pending delivery due at ``due`` (parked if that is far ahead: domain.queue_times)."""
    next_at, wake_at = queue_times(due, now)
    return {
        "id": ids.new_id(ids.DELIVERY),
        "msg_id": msg_id,
        "endpoint_id": ep_id,
        "app_id": app_id,
        "status": MessageStatus.PENDING,
        "attempt_count": 0,
        "trigger_type": TriggerType.SCHEDULED,
        "next_attempt_at": next_at,
        "wake_at": wake_at,
        "lease": None,
        "payload": None,
        "note": None,
        "ordering_key": None,
        "seq": None,
        "created_at": now,
        "updated_at": now,
    }
