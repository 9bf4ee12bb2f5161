"""Standard Webhooks signatures: secrets, signing, verification.

Two kinds of secret, in Svix's formats: symmetric ``whsec_<base64 key>`` signs ``v1,``
(HMAC-SHA256), and asymmetric ``whsk_<base64 of the 32-byte ed25519 private key followed
by its 32-byte public key>`` signs ``v1a,`` (ed25519). Receivers of an ed25519 endpoint get
only its public key, ``whpk_<base64 32 bytes>``, which verifies but cannot sign. Both sign
the same content: ``{id}.{timestamp}.{body}``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidSignature as _BadEd25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SECRET_PREFIX = "whsec_"
ED25519_SECRET_PREFIX = "whsk_"
ED25519_PUBLIC_PREFIX = "whpk_"
# What signs one delivery: an HMAC key, or an ed25519 private key.
SigningKey = bytes | Ed25519PrivateKey


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


def generate_ed25519_secret() -> str:
    key = Ed25519PrivateKey.generate()
    return ED25519_SECRET_PREFIX + base64.b64encode(_raw(key) + _raw(key.public_key())).decode()


def _raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        return key.private_bytes_raw()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} must be base64") from None


def decode_ed25519_secret(secret: str) -> Ed25519PrivateKey:
    """``whsk_`` + base64(private key + public key), the public half checked against the
    private one (a pasted key cut or mixed up would otherwise sign what nobody verifies)."""
    raw = _b64(secret.removeprefix(ED25519_SECRET_PREFIX), "a whsk_ key")
    if len(raw) != 64:
        raise ValueError("a whsk_ key is 64 bytes: the ed25519 private key, then its public key")
    key = Ed25519PrivateKey.from_private_bytes(raw[:32])
    if _raw(key.public_key()) != raw[32:]:
        raise ValueError("the whsk_ key's public half does not belong to its private half")
    return key


def decode_ed25519_public(public: str) -> Ed25519PublicKey:
    raw = _b64(public.removeprefix(ED25519_PUBLIC_PREFIX), "a whpk_ key")
    if len(raw) != 32:
        raise ValueError("a whpk_ key is the 32-byte ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(raw)


def decode_signing_key(secret: str) -> SigningKey:
    """The key an endpoint's stored secret signs with."""
    if secret.startswith(ED25519_SECRET_PREFIX):
        return decode_ed25519_secret(secret)
    if secret.startswith(ED25519_PUBLIC_PREFIX):
        raise ValueError("a whpk_ public key cannot sign: give the whsk_ secret key")
    return decode_secret(secret)


def is_asymmetric(secret: str) -> bool:
    return secret.startswith(ED25519_SECRET_PREFIX)


def public_secret(secret: str) -> str:
    """What a receiver verifies with: the secret itself (HMAC), or the ed25519 public key."""
    if not is_asymmetric(secret):
        return secret
    public = decode_ed25519_secret(secret).public_key()
    return ED25519_PUBLIC_PREFIX + base64.b64encode(_raw(public)).decode()


def _content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(key: SigningKey, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = _content(msg_id, timestamp, body)
    if isinstance(key, Ed25519PrivateKey):
        return "v1a," + base64.b64encode(key.sign(signed)).decode()
    return "v1," + base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode()


def signature_header(keys: Sequence[SigningKey], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def verify(
    secret: str | bytes | Ed25519PublicKey,
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
    if isinstance(secret, str) and secret.startswith(ED25519_PUBLIC_PREFIX):
        secret = decode_ed25519_public(secret)
    if isinstance(secret, Ed25519PublicKey):
        _verify_ed25519(secret, signatures, _content(msg_id, timestamp, body))
        return
    key = secret if isinstance(secret, bytes) else decode_secret(secret)
    expected = sign(key, msg_id, timestamp, body)
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate, expected):
            return
    raise InvalidSignature("no matching signature")


def _verify_ed25519(public: Ed25519PublicKey, signatures: str, content: bytes) -> None:
    for candidate in signatures.split():
        if not candidate.startswith("v1a,"):
            continue
        try:
            public.verify(base64.b64decode(candidate[4:], validate=True), content)
            return
        except (_BadEd25519, binascii.Error, ValueError):
            continue
    raise InvalidSignature("no matching v1a signature")
