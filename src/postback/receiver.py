"""For the people receiving webhooks: verify a Standard Webhooks request and get its payload.

    from postback.receiver import verify, WebhookVerificationError

    payload = verify(request_body, request_headers, "whsec_...")
    payload = verify(request_body, request_headers, "whpk_...")  # an ed25519 endpoint

Both header families are accepted: ``webhook-id/-timestamp/-signature`` (Standard Webhooks)
and ``svix-id/-timestamp/-signature``. The signature header may carry several signatures
separated by spaces (a sender rotating its secret signs with the old and the new one); one
match is enough. Framework helpers: :class:`WebhookVerifier` (FastAPI/Starlette dependency)
and :func:`flask_webhook` (a Flask view decorator; Flask is imported only when it is used).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.exceptions import HTTPException
from starlette.requests import Request

from postback import signing

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TOLERANCE = 300  # seconds; what Standard Webhooks receivers allow either way


class WebhookVerificationError(signing.InvalidSignature):
    """The request is not a webhook signed with this secret. ``status`` is the HTTP answer a
    receiver should give."""

    status = 401


class MissingHeaderError(WebhookVerificationError):
    """A webhook-id, webhook-timestamp or webhook-signature header is absent."""

    status = 400


class TimestampError(WebhookVerificationError):
    """webhook-timestamp is not a number, or too far from now (a replay, or a bad clock)."""


class SignatureMismatchError(WebhookVerificationError):
    """No signature in webhook-signature matches the body with this secret."""


class PayloadError(WebhookVerificationError):
    """The signature is good but the body is not JSON."""

    status = 400


Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def _lower(headers: Headers) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {name.lower(): value for name, value in items}


def _header(lower: dict[str, str], name: str) -> str:
    value = lower.get(f"webhook-{name}") or lower.get(f"svix-{name}")
    if not value:
        raise MissingHeaderError(f"missing webhook-{name} (or svix-{name}) header")
    return value


Secret = str | bytes | Ed25519PublicKey


def signing_key(secret: Secret) -> bytes | Ed25519PublicKey:
    """``whsec_<base64>`` or bare base64 text (bytes are the HMAC key itself), or an ed25519
    endpoint's public key ``whpk_<base64>`` (its signatures are ``v1a,``)."""
    if isinstance(secret, bytes | Ed25519PublicKey):
        return secret
    try:
        if secret.startswith(signing.ED25519_PUBLIC_PREFIX):
            return signing.decode_ed25519_public(secret)
        return signing.decode_secret(secret)
    except ValueError as exc:
        raise ValueError(f"unusable webhook secret: {exc}") from None


def verify(
    payload: bytes | str,
    headers: Headers,
    secret: Secret,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Any:
    """Check a webhook's signature and timestamp; return its parsed JSON body.

    ``payload`` must be the raw body as received (re-serialized JSON will not verify).
    Raises a :class:`WebhookVerificationError` subclass saying what is wrong."""
    body = payload.encode() if isinstance(payload, str) else payload
    lower = _lower(headers)
    msg_id, stamp, signatures = (_header(lower, n) for n in ("id", "timestamp", "signature"))
    try:
        timestamp = int(stamp)
    except ValueError:
        raise TimestampError(f"webhook-timestamp is not a number: {stamp!r}") from None
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise TimestampError(f"webhook-timestamp is {current - timestamp:.0f}s old (too old)")
    if timestamp > current + tolerance:
        raise TimestampError(f"webhook-timestamp is {timestamp - current:.0f}s in the future")
    key = signing_key(secret)
    # Headers and timestamp are known good here, so the only failure left is the signature
    # (signing.verify compares every candidate in constant time).
    canonical = {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signatures}
    try:
        signing.verify(key, canonical, body, tolerance=tolerance, now=current)
    except signing.InvalidSignature:
        raise SignatureMismatchError("no signature matches this body and secret") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise PayloadError("the body is not JSON") from None


class WebhookVerifier:
    """A FastAPI dependency (or a plain Starlette helper) giving a verified payload:

        verified = WebhookVerifier("whsec_...")

        @app.post("/webhooks")
        async def hook(payload: dict = Depends(verified)): ...

    A request that does not verify gets 400 (headers missing, body not JSON) or 401."""

    def __init__(self, secret: Secret, *, tolerance: float = DEFAULT_TOLERANCE) -> None:
        self.key = signing_key(secret)  # a bad secret fails at startup, not on the first webhook
        self.tolerance = tolerance

    async def __call__(self, request: Request) -> Any:
        body = await request.body()
        try:
            return verify(body, request.headers, self.key, tolerance=self.tolerance)
        except WebhookVerificationError as exc:
            raise HTTPException(exc.status, str(exc)) from exc


def verify_flask(request: Any, secret: Secret, *, tolerance: float = DEFAULT_TOLERANCE) -> Any:
    """Verify a ``flask.request`` (any object with ``get_data()`` and ``headers``)."""
    return verify(request.get_data(), request.headers, secret, tolerance=tolerance)


def flask_webhook(secret: Secret, *, tolerance: float = DEFAULT_TOLERANCE) -> Callable[[F], F]:
    """Decorate a Flask view: the request is verified first (400/401 with the reason if it
    fails) and the payload is passed to the view as ``webhook=``."""
    key = signing_key(secret)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            import flask  # Flask is the receiver's dependency, not postback's

            try:
                payload = verify_flask(flask.request, key, tolerance=tolerance)
            except WebhookVerificationError as exc:
                flask.abort(exc.status, description=str(exc))
            return view(*args, webhook=payload, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
