"""postback.receiver cross-checked against standardwebhooks and svix on the same requests."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

import flask
import pytest
import standardwebhooks.webhooks as sw
import svix.webhooks as sx
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from postback import signing
from postback.receiver import (
    MissingHeaderError,
    PayloadError,
    SignatureMismatchError,
    TimestampError,
    WebhookVerificationError,
    WebhookVerifier,
    flask_webhook,
    verify,
)

OLD = signing.encode_secret(b"o" * 24)
NEW = signing.encode_secret(b"n" * 32)
OTHER = signing.encode_secret(b"x" * 24)
BODY = b'{"type":"invoice.paid","data":{"id":"inv_1","amount":1250}}'


def signed(
    secrets: list[str], body: bytes = BODY, *, at: float | None = None, prefix: str = "webhook"
) -> dict[str, str]:
    """Headers as postback's sender builds them, one signature per secret."""
    stamp = int(time.time() if at is None else at)
    keys = [signing.decode_secret(s) for s in secrets]
    return {
        f"{prefix}-id": "msg_test",
        f"{prefix}-timestamp": str(stamp),
        f"{prefix}-signature": signing.signature_header(keys, "msg_test", stamp, body),
    }


def verdicts(body: bytes, headers: dict[str, str], secret: str) -> tuple[bool, bool, bool]:
    """Does each library accept the request? (ours, standardwebhooks, svix)"""
    results = []
    for check, error in (
        (lambda: verify(body, headers, secret), WebhookVerificationError),
        (
            lambda: sw.Webhook(secret).verify(body, _as_webhook(headers)),
            sw.WebhookVerificationError,
        ),
        (lambda: sx.Webhook(secret).verify(body, headers), sx.WebhookVerificationError),
    ):
        try:
            check()
            results.append(True)
        except error:
            results.append(False)
    return tuple(results)  # type: ignore[return-value]


def _as_webhook(headers: dict[str, str]) -> dict[str, str]:
    # standardwebhooks reads only the webhook-* names.
    return {k.replace("svix-", "webhook-"): v for k, v in headers.items()}


def test_valid_request_verifies_everywhere_and_returns_the_payload() -> None:
    headers = signed([NEW])
    assert verdicts(BODY, headers, NEW) == (True, True, True)
    assert verify(BODY, headers, NEW) == {
        "type": "invoice.paid",
        "data": {"id": "inv_1", "amount": 1250},
    }
    assert verify(BODY.decode(), headers, NEW)["data"]["amount"] == 1250


def test_signatures_made_by_standardwebhooks_verify_with_ours() -> None:
    now = datetime.now(UTC)
    signature = sw.Webhook(NEW).sign("msg_lib", now, BODY.decode())
    headers = {
        "Webhook-Id": "msg_lib",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": signature,
    }
    assert verify(BODY, headers, NEW)["type"] == "invoice.paid"
    assert verify(BODY, list(headers.items()), NEW)["type"] == "invoice.paid"


def test_tampered_body_is_rejected_everywhere() -> None:
    headers = signed([NEW])
    tampered = BODY.replace(b"1250", b"9999")
    assert verdicts(tampered, headers, NEW) == (False, False, False)
    with pytest.raises(SignatureMismatchError):
        verify(tampered, headers, NEW)


def test_wrong_secret_is_rejected_everywhere() -> None:
    assert verdicts(BODY, signed([NEW]), OTHER) == (False, False, False)


@pytest.mark.parametrize("offset", [-301, -3600, 301, 3600])
def test_timestamps_outside_the_tolerance_are_rejected_both_ways(offset: int) -> None:
    headers = signed([NEW], at=time.time() + offset)
    assert verdicts(BODY, headers, NEW) == (False, False, False)
    with pytest.raises(TimestampError, match="old" if offset < 0 else "future"):
        verify(BODY, headers, NEW)


def test_tolerance_is_adjustable() -> None:
    headers = signed([NEW], at=time.time() - 1000)
    assert verify(BODY, headers, NEW, tolerance=2000)["data"]["id"] == "inv_1"
    with pytest.raises(TimestampError):
        verify(BODY, signed([NEW], at=time.time() - 20), NEW, tolerance=10)


def test_rotation_two_signatures_verify_with_either_secret() -> None:
    headers = signed([OLD, NEW])
    assert len(headers["webhook-signature"].split()) == 2
    assert verdicts(BODY, headers, OLD) == (True, True, True)
    assert verdicts(BODY, headers, NEW) == (True, True, True)
    assert verdicts(BODY, headers, OTHER) == (False, False, False)


def test_svix_header_names_are_accepted() -> None:
    headers = signed([NEW], prefix="svix")
    assert verdicts(BODY, headers, NEW) == (True, True, True)


def test_raw_base64_and_byte_secrets() -> None:
    headers = signed([NEW])
    raw = NEW.removeprefix("whsec_")
    assert verify(BODY, headers, raw)["type"] == "invoice.paid"
    assert verify(BODY, headers, b"n" * 32)["type"] == "invoice.paid"
    assert sw.Webhook(raw).verify(BODY, headers)["type"] == "invoice.paid"
    with pytest.raises(ValueError, match="unusable webhook secret"):
        verify(BODY, headers, "whsec_not base64!")


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_named(missing: str) -> None:
    headers = signed([NEW])
    del headers[missing]
    with pytest.raises(MissingHeaderError, match=missing):
        verify(BODY, headers, NEW)
    assert verdicts(BODY, headers, NEW) == (False, False, False)


def test_non_numeric_timestamp_and_non_json_body() -> None:
    headers = signed([NEW]) | {"webhook-timestamp": "yesterday"}
    with pytest.raises(TimestampError, match="not a number"):
        verify(BODY, headers, NEW)
    text = b"plain text"
    with pytest.raises(PayloadError):
        verify(text, signed([NEW], text), NEW)


def test_unknown_signature_versions_are_skipped() -> None:
    headers = signed([NEW])
    fake = "v1a," + base64.b64encode(b"s" * 64).decode()
    headers["webhook-signature"] = f"{fake} {headers['webhook-signature']}"
    assert verdicts(BODY, headers, NEW) == (True, True, True)


# ---- framework helpers ---------------------------------------------------------------


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/hook")
    async def hook(payload: Any = Depends(WebhookVerifier(NEW))) -> dict:
        return {"got": payload["data"]["id"]}

    return app


def test_fastapi_dependency_accepts_and_rejects() -> None:
    with TestClient(fastapi_app()) as client:
        good = client.post("/hook", content=BODY, headers=signed([OLD, NEW]))
        assert (good.status_code, good.json()) == (200, {"got": "inv_1"})
        tampered = client.post("/hook", content=BODY + b" ", headers=signed([NEW]))
        assert tampered.status_code == 401
        assert "no signature matches" in tampered.json()["detail"]
        stale = client.post("/hook", content=BODY, headers=signed([NEW], at=time.time() - 900))
        assert stale.status_code == 401
        bare = client.post("/hook", content=BODY)
        assert bare.status_code == 400
        assert "webhook-id" in bare.json()["detail"]


def test_fastapi_verifier_refuses_a_bad_secret_at_startup() -> None:
    with pytest.raises(ValueError):
        WebhookVerifier("whsec_%%%")


def test_flask_decorator_accepts_and_rejects() -> None:
    app = flask.Flask(__name__)

    @app.post("/hook")
    @flask_webhook(NEW)
    def hook(webhook: Any) -> dict:
        return {"got": webhook["data"]["id"]}

    client = app.test_client()
    good = client.post("/hook", data=BODY, headers=signed([NEW]))
    assert (good.status_code, good.get_json()) == (200, {"got": "inv_1"})
    tampered = client.post("/hook", data=BODY.replace(b"inv_1", b"inv_2"), headers=signed([NEW]))
    assert tampered.status_code == 401
    assert b"no signature matches" in tampered.data
    assert client.post("/hook", data=BODY).status_code == 400
