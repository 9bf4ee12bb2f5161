"""What every wire model shares: the ``Wire`` base (Svix's camelCase names, no NUL in
text), the error body, the list envelope, and the checked field types (URL, headers, uid,
secret, payload rules) that more than one resource uses."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from postback.filters import RuleError, check_filter, check_path, check_projection
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
    if isinstance(value, list | tuple):
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


# A dotted path into a payload, as filters write it (data.product.id).
PayloadPath = Annotated[str, AfterValidator(_rule(check_path))]
# A product id, as an endpoint is limited to one and as messages name it.
Product = Annotated[str, Field(min_length=1, max_length=128, pattern=NAME_RE)]
PayloadFilter = Annotated[dict[str, Any], AfterValidator(_rule(check_filter))]
Projection = Annotated[dict[str, Any], AfterValidator(_rule(check_projection))]

Uid = Annotated[
    str, Field(min_length=1, max_length=256, pattern=NAME_RE), AfterValidator(check_uid)
]
Url = Annotated[str, AfterValidator(check_url)]
Headers = Annotated[dict[str, str], AfterValidator(check_headers)]
Secret = Annotated[str, AfterValidator(check_secret)]

Channels = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=128, pattern=NAME_RE)]], Field(max_length=10)
]
# Svix's name, its older one, and ours.
RATE = AliasChoices("throttleRate", "rateLimit", "throttle_rate")

T = TypeVar("T")


class ListResponse(Wire, Generic[T]):
    data: list[T]
    iterator: str | None
    prev_iterator: str | None
    done: bool
