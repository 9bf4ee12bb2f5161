"""Which endpoints a message goes to, and the delivery row each one gets: pure functions,
shared by the general path (messages.py) and both databases' batch writers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from postback import ids, reasons
from postback.domain import (
    MessageStatus,
    TriggerType,
    decode_json,
    endpoint_wants,
    queue_times,
)
from postback.filters import compile_filter, project
from postback.store import schema as t

Row = dict[str, Any]
Reason = reasons.Reason
_UNPARSED = object()


class Routable(Protocol):
    """What routing reads of an endpoint: its id and routing columns."""

    id: str
    product: str | None
    event_types: Any
    channels: Any
    payload_filter: Any
    projection: Any
    ordered: bool


_e = t.endpoints.c
# What routing reads of an endpoint, in RoutedEndpoint's order (raw SQL readers select the
# same columns in the same order: store/pg/ingest.py, store/sqlite/ingest.py).
ROUTING_COLUMNS = (
    _e.id,
    _e.product,
    _e.event_types,
    _e.channels,
    _e.payload_filter,
    _e.projection,
    _e.ordered,
)


class RoutedEndpoint:
    """An endpoint as the batch writers read it from a driver's row: its id, its product,
    its routing columns, JSON given as text (decoded here) or already decoded, and whether
    it is ordered."""

    __slots__ = (
        "channels",
        "event_types",
        "id",
        "ordered",
        "payload_filter",
        "product",
        "projection",
    )

    def __init__(self, ep_id: str, product: str | None, *routing: Any) -> None:
        self.id = ep_id
        self.product = product
        *rules, ordered = routing
        self.ordered = bool(ordered)
        self.event_types, self.channels, self.payload_filter, self.projection = (
            json.loads(v) if isinstance(v, str) else v for v in rules
        )


def for_product(product: str | None, msg_product: str | None, msg_channels: Any) -> bool:
    """Whether a message is for an endpoint's one ``product``: the product its payload
    names (its event type's productPath), or, for senders that name it so, one of its
    channels. An endpoint without a product takes every product."""
    if product is None or product == msg_product:
        return True
    return bool(msg_channels and product in msg_channels)


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
        if not everyone and not (
            endpoint_wants(ep.event_types, ep.channels, row["event_type"], row["channels"])
            and for_product(ep.product, row.get("product"), row["channels"])
        ):
            continue  # no delivery: the message's destinations explain it (why_not)
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


def why_not(ep: Row, msg: Row) -> Reason:
    """Why an endpoint of the message's application has no delivery of it, read from the
    endpoint as it is now (only a payload filter's "no" is written down at ingest)."""
    if ep["created_at"] > msg["created_at"]:
        return {"code": reasons.CREATED_AFTER}
    if ep["disabled"]:
        return {"code": reasons.DISABLED}
    event_types, channels = ep.get("event_types"), ep.get("channels")
    if event_types and msg["event_type"] not in event_types:
        return {
            "code": reasons.EVENT_TYPE,
            "eventType": msg["event_type"],
            "subscribed": list(event_types),
        }
    if not endpoint_wants(None, channels, msg["event_type"], msg["channels"]):
        return {
            "code": reasons.CHANNEL,
            "channels": list(channels or []),
            "messageChannels": list(msg["channels"] or []),
        }
    if not for_product(ep.get("product"), msg.get("product"), msg["channels"]):
        return {"code": reasons.PRODUCT, "product": ep["product"], "found": msg.get("product")}
    return {"code": reasons.CHANGED_SINCE}


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
