"""Wire models of endpoints: their fields, secret, custom headers, statistics and the
test-event request (the credentials toward the receiver are in ``wire.credentials``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field

from postback.api.wire.common import (
    RATE,
    Channels,
    Headers,
    Metadata,
    Name,
    PayloadFilter,
    Product,
    Projection,
    Rate,
    Secret,
    Uid,
    Url,
    Wire,
)
from postback.api.wire.credentials import MtlsIn, MtlsOut, OAuthIn, OAuthOut
from postback.api.wire.ordering import OrderingSummaryOut

EventTypes = Annotated[list[Name], Field(max_length=1000)]
_EVENT_TYPES = AliasChoices("eventTypes", "filterTypes", "event_types")


class EndpointFields(Wire):
    description: Annotated[str, Field(max_length=4096)] | None = None
    uid: Uid | None = None
    throttle_rate: Rate | None = Field(None, validation_alias=RATE)
    disabled: bool | None = None
    event_types: EventTypes | None = Field(None, validation_alias=_EVENT_TYPES)
    channels: Channels | None = None
    # postback's own: the one product it is for, matched with the product a message names
    # in its payload (its event type's productPath) or among its channels.
    product: Product | None = None
    metadata: Metadata | None = None
    # postback's own: which messages it gets, and which of their fields (postback.filters).
    payload_filter: PayloadFilter | None = Field(None, alias="filter")
    projection: Projection | None = None
    # postback's own: deliveries in flight to it at once, over every worker (null: the
    # server's POSTBACK_ENDPOINT_MAX_IN_FLIGHT).
    max_in_flight: Annotated[int, Field(ge=1, le=10_000)] | None = None
    # postback's own: deliveries go out one at a time per message ordering key, in message
    # order (docs/architecture.md, "Ordered delivery").
    ordered: bool | None = None
    # postback's own, inline: what PUT …/mtls and PUT …/oauth set (Svix's routes); null
    # removes it, absent keeps it.
    mtls: MtlsIn | None = None
    oauth: OAuthIn | None = None


class EndpointIn(EndpointFields):
    url: Url
    secret: Secret | None = None
    headers: Headers | None = None


class EndpointPatch(EndpointFields):
    url: Url | None = None


class CircuitOut(Wire):
    """postback's own: the endpoint's circuit breaker. ``open``: its deliveries wait (not
    attempted, their retry schedules untouched) until the probe at ``nextProbeAt``;
    ``half-open``: that probe is out; a success closes it."""

    state: Literal["closed", "open", "half-open"]
    since: datetime | None = None
    next_probe_at: datetime | None = None
    failures: int = 0


class EndpointOut(Wire):
    id: str
    uid: str | None
    url: str
    description: str
    throttle_rate: int | None
    disabled: bool
    event_types: list[str] | None
    channels: list[str] | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    # The names the svix SDKs 1.x read for eventTypes and throttleRate: both are sent.
    filter_types: list[str] | None = None
    rate_limit: int | None = None
    product: str | None = None
    # postback's own: why and when the endpoint stopped (auto-disable or a request): a
    # sentence, and the same as a code with its values (disabledCause, postback/reasons.py).
    disabled_reason: str | None = None
    disabled_cause: dict[str, Any] | None = None
    disabled_at: datetime | None = None
    payload_filter: dict[str, Any] | None = Field(None, alias="filter")
    projection: dict[str, Any] | None = None
    max_in_flight: int | None = None
    ordered: bool = False
    # An ordered endpoint read alone: its blocked keys (null in lists and when unordered).
    ordering: OrderingSummaryOut | None = None
    circuit: CircuitOut | None = None
    # Until when a receiver's Retry-After holds its deliveries back.
    paused_until: datetime | None = None
    # The client certificate (fingerprint, subject, expiry) and OAuth2 configuration, never
    # their secrets.
    mtls: MtlsOut | None = None
    oauth: OAuthOut | None = None


class EndpointSecretOut(Wire):
    key: str


class EndpointSecretRotateIn(Wire):
    key: Secret | None = None
    # How long the old secret keeps signing beside the new one (default 24 h).
    grace_period_seconds: Annotated[int, Field(ge=0, le=7 * 86400)] | None = None


class EventExampleIn(Wire):
    event_type: Name
    example_index: Annotated[int, Field(ge=0, le=1000)] | None = None
    payload: dict[str, Any] | None = None


class EndpointHeadersIn(Wire):
    headers: Headers


class EndpointHeadersPatchIn(EndpointHeadersIn):
    delete_headers: list[str] | None = None


class EndpointHeadersOut(Wire):
    headers: dict[str, str]
    sensitive: list[str]


class EndpointStats(Wire):
    success: int
    pending: int
    sending: int
    fail: int
    canceled: int


class EndpointAttemptStats(Wire):
    """Svix's attempt-stats: the endpoint's attempts in the window, by outcome."""

    success: int
    fail: int
    canceled: int
