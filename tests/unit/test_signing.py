"""Standard Webhooks signatures: what we sign, the receiver libraries accept; what we verify,
we verify strictly."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st
from svix.webhooks import Webhook as SvixWebhook

from postback.signing import (
    InvalidSignature,
    decode_secret,
    encode_secret,
    generate_secret,
    sign,
    signature_header,
    verify,
)


def _headers(msg_id: str, ts: int, signature: str, prefix: str = "webhook") -> dict[str, str]:
    return {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(ts),
        f"{prefix}-signature": signature,
    }


def test_known_answer() -> None:
    key = bytes(range(32))
    body = b'{"event":"purchase.approved","amount":10}'
    expected = base64.b64encode(
        hmac.new(key, b"msg_1.1700000000." + body, hashlib.sha256).digest()
    ).decode()
    assert sign(key, "msg_1", 1700000000, body) == f"v1,{expected}"


def test_receiver_libraries_accept_what_we_sign() -> None:
    secret = generate_secret()
    body = '{"buyer":{"name":"João"},"amount":129.9}'.encode()
    now = int(time.time())
    signature = signature_header([decode_secret(secret)], "msg_abc", now, body)
    assert standardwebhooks.Webhook(secret).verify(body, _headers("msg_abc", now, signature))
    SvixWebhook(secret).verify(body, _headers("msg_abc", now, signature, "svix"))
    SvixWebhook(secret).verify(body, _headers("msg_abc", now, signature, "webhook"))


def test_several_keys_verify_with_either() -> None:
    old, new = generate_secret(), generate_secret()
    now = int(time.time())
    header = signature_header([decode_secret(new), decode_secret(old)], "msg_r", now, b"{}")
    assert len(header.split()) == 2
    for secret in (old, new):
        verify(secret, _headers("msg_r", now, header), b"{}")
        standardwebhooks.Webhook(secret).verify(b"{}", _headers("msg_r", now, header))


def test_verify_rejects_tampering_staleness_and_wrong_keys() -> None:
    secret = generate_secret()
    now = int(time.time())
    good = _headers("msg_t", now, sign(decode_secret(secret), "msg_t", now, b"{}"))
    verify(secret, good, b"{}")
    with pytest.raises(InvalidSignature, match="no matching"):
        verify(secret, good, b"{ }")
    with pytest.raises(InvalidSignature, match="no matching"):
        verify(generate_secret(), good, b"{}")
    with pytest.raises(InvalidSignature, match="too far"):
        verify(secret, good, b"{}", now=now + 301)
    with pytest.raises(InvalidSignature, match="missing"):
        verify(secret, {"webhook-id": "msg_t"}, b"{}")
    with pytest.raises(InvalidSignature, match="not a number"):
        verify(secret, {**good, "webhook-timestamp": "soon"}, b"{}")


@pytest.mark.parametrize("bad", ["whsec_short", "whsec_!!!", "", "whsec_" + "A" * 200])
def test_decode_secret_rejects_bad_keys(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_secret(bad)


def test_secret_forms() -> None:
    key = bytes(range(24))
    assert decode_secret(encode_secret(key)) == key
    assert decode_secret(base64.b64encode(key).decode()) == key  # raw base64 too


@given(
    key=st.binary(min_size=24, max_size=64),
    msg_id=st.from_regex(r"msg_[0-9a-z]{1,30}", fullmatch=True),
    body=st.binary(max_size=2048),
    skew=st.integers(min_value=-300, max_value=300),
)
def test_sign_verify_round_trip(key: bytes, msg_id: str, body: bytes, skew: int) -> None:
    now = 1_800_000_000
    headers = _headers(msg_id, now + skew, sign(key, msg_id, now + skew, body))
    verify(key, headers, body, now=now)
    verify(encode_secret(key), headers, body, now=now)


@given(
    key=st.binary(min_size=24, max_size=64),
    body=st.binary(min_size=1, max_size=512),
    flip=st.integers(min_value=0, max_value=511),
)
def test_any_changed_byte_fails(key: bytes, body: bytes, flip: int) -> None:
    now = 1_800_000_000
    headers = _headers("msg_x", now, sign(key, "msg_x", now, body))
    i = flip % len(body)
    tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
    with pytest.raises(InvalidSignature):
        verify(key, headers, tampered, now=now)
