"""Standard Webhooks signatures: secrets, signing, verification."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"


class InvalidSignature(Exception):
    """The webhook's headers or signature do not check out."""


def generate_secret() -> str:
    return encode_secret(os.urandom(32))


def encode_secret(key: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(key).decode()


def decode_secret(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret must be base64, optionally prefixed with whsec_") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("secret key must be 24 to 64 bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode()


def signature_header(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> None:
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id") or lower.get("svix-id")
    stamp = lower.get("webhook-timestamp") or lower.get("svix-timestamp")
    signatures = lower.get("webhook-signature") or lower.get("svix-signature")
    if not (msg_id and stamp and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature("webhook-timestamp is too far from now")
    key = secret if isinstance(secret, bytes) else decode_secret(secret)
    expected = sign(key, msg_id, timestamp, body)
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate, expected):
            return
    raise InvalidSignature("no matching signature")
