"""Rows from the store turned into wire models."""

from __future__ import annotations

from typing import Any

import orjson

from postback import reasons
from postback.api.masking import shown_url
from postback.api.wire.applications import ApplicationOut
from postback.api.wire.attempts import EndpointMessageOut, MessageAttemptOut, MessageEndpointOut
from postback.api.wire.credentials import mtls_out, oauth_out
from postback.api.wire.endpoints import CircuitOut, EndpointOut
from postback.api.wire.event_types import EventTypeOut
from postback.api.wire.messages import MessageOut
from postback.delivery.scheduler import Circuit
from postback.domain import MessageStatus, TriggerType, decode_json
from postback.store.pages import PageOut

Row = dict[str, Any]


def application(row: Row) -> ApplicationOut:
    return ApplicationOut.model_validate(row)


def event_type(row: Row) -> EventTypeOut:
    return EventTypeOut.model_validate(row)


def endpoint(row: Row) -> EndpointOut:
    return EndpointOut.model_validate(row | _endpoint_fields(row))


def _endpoint_fields(row: Row) -> Row:
    """What an endpoint's wire form says beyond its columns."""
    cause = reasons.disabled_cause(row.get("disabled_reason"))
    return {
        "url": shown_url(row["url"]),
        "circuit": circuit(row),
        "mtls": mtls_out(row.get("tls_info")),
        "oauth": oauth_out(row.get("oauth_info")),
        "filter_types": row.get("event_types"),
        "rate_limit": row.get("throttle_rate"),
        "disabled_reason": reasons.english(cause),
        "disabled_cause": cause,
    }


def circuit(row: Row) -> CircuitOut:
    state = Circuit(row.get("circuit_state") or 0)
    return CircuitOut(
        state=state.text,  # type: ignore[arg-type]
        since=row.get("circuit_since"),
        next_probe_at=row.get("circuit_probe_at") if state is not Circuit.CLOSED else None,
        failures=row.get("circuit_failures") or 0,
    )


def message(row: Row, *, with_content: bool = True) -> MessageOut:
    payload = decode_json(row["payload"]) if with_content and row.get("payload") else {}
    return MessageOut(
        id=row["id"],
        event_type=row["event_type"],
        event_id=row["event_id"],
        payload=payload,
        channels=row["channels"],
        tags=row["tags"],
        timestamp=row["created_at"],
        deliver_at=row["deliver_at"],
        ordering_key=row.get("ordering_key"),
    )


def message_json(row: Row, *, with_content: bool = True) -> bytes:
    """``message(row)`` serialised, byte for byte, without parsing the stored payload and
    serialising it again: the hot path of POST /msg/ (a test holds the two equal)."""
    payload = row.get("payload") if with_content else None
    return orjson.dumps(
        {
            "id": row["id"],
            "eventType": row["event_type"],
            "eventId": row["event_id"],
            "payload": orjson.Fragment(payload) if payload else {},
            "channels": row["channels"],
            "tags": row["tags"],
            "timestamp": row["created_at"],
            "deliverAt": row["deliver_at"],
            "orderingKey": row.get("ordering_key"),
        },
        option=orjson.OPT_UTC_Z,
    )


def attempt(row: Row) -> MessageAttemptOut:
    return MessageAttemptOut(
        id=row["id"],
        msg_id=row["msg_id"],
        endpoint_id=row["endpoint_id"],
        url=shown_url(row["url"]),
        # With no HTTP response, the reason stands where the body would.
        response=row["response"] or row["error"] or "",
        response_status_code=row["response_status_code"],
        response_duration_ms=row["response_duration_ms"],
        status=row["status"],
        status_text=MessageStatus(row["status"]).text,
        trigger_type=TriggerType(row["trigger_type"]).wire,
        trigger=TriggerType(row["trigger_type"]).text,
        timestamp=row["created_at"],
    )


def destination(row: Row) -> MessageEndpointOut:
    status = MessageStatus(row["status"])
    return MessageEndpointOut.model_validate(
        row
        | _endpoint_fields(row)
        | {
            "status": status,
            "status_text": status.text,
            "next_attempt": _next(row),
            "note": reasons.english(row.get("reason")),
        }
    )


def attempted_message(row: Row, *, with_content: bool) -> EndpointMessageOut:
    status = MessageStatus(row["status"])
    base = message(row, with_content=with_content).model_dump()
    return EndpointMessageOut(
        **base, status=status, status_text=status.text, next_attempt=_next(row)
    )


def _next(row: Row) -> Any:
    # While a delivery is being sent its due time is the lease's end, not a real next try.
    return row["next_attempt_at"] if row["status"] == MessageStatus.PENDING else None


def listing(page: PageOut, convert: Any) -> dict[str, Any]:
    return {
        "data": [convert(r) for r in page.rows],
        "iterator": page.iterator,
        "prevIterator": page.prev_iterator,
        "done": page.done,
    }
