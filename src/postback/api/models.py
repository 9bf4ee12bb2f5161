"""Wire models: Svix v1 field names (camelCase) and the checks made at the edge."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from postback.api.credential_models import MtlsIn, MtlsOut, OAuthIn, OAuthOut
from postback.filters import RuleError, check_filter, check_projection
from postback.schemas import SchemaError, check_schemas
from postback.signing import decode_signing_key

NAME_RE = r"^[a-zA-Z0-9\-_.]+$"
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$")
MAX_URL = 2048
MAX_HEADERS = 64
# Ours to set on every delivery: a custom header may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "svix-id",
        "svix-timestamp",
        "svix-signature",
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
        "connection",
        "user-agent",
    }
)
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token"}
)

Name = Annotated[str, Field(min_length=1, max_length=256, pattern=NAME_RE)]
Metadata = dict[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=4096)]]
Rate = Annotated[int, Field(ge=1, le=100_000)]


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    @model_validator(mode="after")
    def _no_nul(self) -> Wire:
        # No database stores U+0000 in text; say so here instead of failing there. The
        # payload is stored as bytes and may hold anything JSON allows.
        for name, value in self.__dict__.items():
            if name != "payload" and _has_nul(value):
                raise ValueError(f"{to_camel(name)}: text may not contain the NUL character")
        return self


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class ErrorOut(BaseModel):
    """Every error but validation: a machine-readable code and a sentence."""

    code: str
    detail: str


def check_url(url: str) -> str:
    if len(url) > MAX_URL:
        raise ValueError(f"URL longer than {MAX_URL} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        # A space or control character is not part of a URL; clients differ in whether
        # they quote it, strip it or cut the URL there.
        raise ValueError("URL must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise ValueError("URL must use http or https")
    if not parts.hostname:
        raise ValueError("URL must have a host")
    return url


def check_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    if headers is None:
        return None
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"at most {MAX_HEADERS} headers")
    for name, value in headers.items():
        if not HEADER_NAME_RE.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by postback and cannot be overridden")
        if len(value) > 4096 or any(c in value for c in "\r\n\0"):
            raise ValueError(f"invalid value for header {name!r}")
    return headers


def check_uid(uid: str | None) -> str | None:
    # A uid shaped like an id would make lookups by "id or uid" ambiguous.
    if uid is not None and re.match(r"^[a-z]+_[0-9a-z]{26}$", uid):
        raise ValueError("uid must not look like a postback id")
    return uid


def check_secret(secret: str) -> str:
    decode_signing_key(secret)  # whsec_ (HMAC) or whsk_ (ed25519)
    return secret


def _rule(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A payload rule's own errors name the place inside the rule."""

    def validate(value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(value)
        except RuleError as exc:
            raise ValueError(exc.located) from None

    return validate


PayloadFilter = Annotated[dict[str, Any], AfterValidator(_rule(check_filter))]
Projection = Annotated[dict[str, Any], AfterValidator(_rule(check_projection))]

Uid = Annotated[
    str, Field(min_length=1, max_length=256, pattern=NAME_RE), AfterValidator(check_uid)
]
Url = Annotated[str, AfterValidator(check_url)]
Headers = Annotated[dict[str, str], AfterValidator(check_headers)]
Secret = Annotated[str, AfterValidator(check_secret)]


# ---- applications ------------------------------------------------------------------


class ApplicationIn(Wire):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    uid: Uid | None = None
    throttle_rate: Rate | None = Field(
        None, validation_alias=AliasChoices("throttleRate", "rateLimit", "throttle_rate")
    )
    metadata: Metadata | None = None


class ApplicationPatch(Wire):
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    uid: Uid | None = None
    throttle_rate: Rate | None = Field(
        None, validation_alias=AliasChoices("throttleRate", "rateLimit", "throttle_rate")
    )
    metadata: Metadata | None = None


class ApplicationOut(Wire):
    id: str
    uid: str | None
    name: str
    throttle_rate: int | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime


# ---- event types -------------------------------------------------------------------


class EventTypeBase(Wire):
    description: Annotated[str, Field(max_length=4096)] = ""
    archived: bool | None = None
    deprecated: bool | None = None
    schemas: dict[str, Any] | None = None
    group_name: Annotated[str, Field(max_length=256)] | None = None
    feature_flags: list[Annotated[str, Field(max_length=256, pattern=NAME_RE)]] | None = None
    # postback's own: check message payloads against the newest schema (None: the
    # server's POSTBACK_VALIDATE_PAYLOADS).
    validate_payloads: bool | None = None

    @field_validator("schemas")
    @classmethod
    def _valid_schemas(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            return check_schemas(value)
        except SchemaError as exc:
            raise ValueError(str(exc)) from None


class EventTypeIn(EventTypeBase):
    name: Name


class EventTypeOut(Wire):
    name: str
    description: str
    archived: bool
    deprecated: bool
    schemas: dict[str, Any] | None
    group_name: str | None
    feature_flags: list[str] | None
    created_at: datetime
    updated_at: datetime
    validate_payloads: bool | None = None


# ---- endpoints ---------------------------------------------------------------------

EventTypes = Annotated[list[Name], Field(max_length=1000)]
Channels = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=128, pattern=NAME_RE)]], Field(max_length=10)
]
_EVENT_TYPES = AliasChoices("eventTypes", "filterTypes", "event_types")
_RATE = AliasChoices("throttleRate", "rateLimit", "throttle_rate")


class EndpointFields(Wire):
    description: Annotated[str, Field(max_length=4096)] | None = None
    uid: Uid | None = None
    throttle_rate: Rate | None = Field(None, validation_alias=_RATE)
    disabled: bool | None = None
    event_types: EventTypes | None = Field(None, validation_alias=_EVENT_TYPES)
    channels: Channels | None = None
    metadata: Metadata | None = None
    # postback's own: which messages it gets, and which of their fields (postback.filters).
    payload_filter: PayloadFilter | None = Field(None, alias="filter")
    projection: Projection | None = None
    # postback's own: deliveries in flight to it at once, over every worker (null: the
    # server's POSTBACK_ENDPOINT_MAX_IN_FLIGHT).
    max_in_flight: Annotated[int, Field(ge=1, le=10_000)] | None = None
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
    # postback's own: why and when the endpoint stopped (auto-disable or a request).
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    payload_filter: dict[str, Any] | None = Field(None, alias="filter")
    projection: dict[str, Any] | None = None
    max_in_flight: int | None = None
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


# ---- messages ----------------------------------------------------------------------


class MessageIn(Wire):
    event_type: Name
    payload: dict[str, Any]
    event_id: Annotated[str, Field(min_length=1, max_length=256, pattern=NAME_RE)] | None = None
    channels: Channels | None = None
    tags: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=128, pattern=NAME_RE)]],
            Field(max_length=10),
        ]
        | None
    ) = None
    application: ApplicationIn | None = None
    deliver_at: datetime | None = None
    payload_retention_period: Annotated[int, Field(ge=1, le=365 * 5)] | None = None
    payload_retention_hours: Annotated[int, Field(ge=1, le=365 * 5 * 24)] | None = None

    @field_validator("deliver_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("deliverAt needs a timezone")
        return value


class MessageOut(Wire):
    id: str
    event_type: str
    event_id: str | None
    payload: dict[str, Any]
    channels: list[str] | None
    tags: list[str] | None
    timestamp: datetime
    deliver_at: datetime | None = None


class EventOut(MessageOut):
    # Resume right after this message (the events feed).
    cursor: str


class EventListOut(Wire):
    data: list[EventOut]
    iterator: str | None
    prev_iterator: str | None
    done: bool


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


class MessageEndpointOut(EndpointOut):
    status: int
    status_text: str
    next_attempt: datetime | None
    # Why it was not sent there (its payload filter did not match).
    note: str | None = None


class EndpointMessageOut(MessageOut):
    status: int
    status_text: str
    next_attempt: datetime | None


T = TypeVar("T")


class ListResponse(Wire, Generic[T]):
    data: list[T]
    iterator: str | None
    prev_iterator: str | None
    done: bool


# ---- app-portal access ----------------------------------------------------------------


class AppPortalAccessIn(Wire):
    expiry: Annotated[int, Field(ge=60, le=365 * 86400)] | None = None  # seconds
    read_only: bool | None = None
    application: ApplicationIn | None = None
    feature_flags: list[str] | None = None
    session_id: str | None = None


class AppPortalAccessOut(Wire):
    url: str
    token: str


class ApplicationTokenExpireIn(Wire):
    expiry: Annotated[int, Field(ge=0, le=7 * 86400)] | None = None  # grace, seconds
    session_ids: list[str] | None = None


# ---- background tasks ----------------------------------------------------------------


class RecoverIn(Wire):
    since: datetime
    until: datetime | None = None

    @model_validator(mode="after")
    def _window(self) -> RecoverIn:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a timezone")
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class RecoverOut(Wire):
    id: str
    status: str
    task: str
    updated_at: datetime


class BackgroundTaskOut(Wire):
    id: str
    status: str
    task: str
    data: dict[str, Any]
    updated_at: datetime
