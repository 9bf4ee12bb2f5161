"""Wire models of attempts, and of the listings that join a message with its endpoints
(a message's destinations, an endpoint's messages)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from postback.api.wire.common import Wire
from postback.api.wire.endpoints import EndpointOut
from postback.api.wire.messages import MessageOut


class MessageAttemptOut(Wire):
    id: str
    msg_id: str
    endpoint_id: str
    url: str
    response: str
    response_status_code: int
    response_duration_ms: int
    status: int
    status_text: str
    trigger_type: int
    timestamp: datetime
    msg: MessageOut | None = None
    # postback's own: "scheduled", "manual" or "recovery" (an attempt of a recover, which
    # triggerType shows as scheduled: Svix's enum has only 0 and 1).
    trigger: str | None = None


class MessageEndpointOut(EndpointOut):
    status: int
    status_text: str
    next_attempt: datetime | None
    # postback's own: why it was not sent there (status 4, canceled), as a sentence and as
    # a code with its values: event_type, channel, product, filter, disabled,
    # created_after, changed_since (postback/reasons.py). Null when it was sent.
    note: str | None = None
    reason: dict[str, Any] | None = None


class EndpointMessageOut(MessageOut):
    status: int
    status_text: str
    next_attempt: datetime | None
