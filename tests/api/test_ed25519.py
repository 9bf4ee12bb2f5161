"""Ed25519 signatures (``v1a,``) with Svix's key formats: ``whsk_`` signs, ``whpk_``
verifies. Checked against Svix's own test vector, by an independent verifier (cryptography's
Ed25519PublicKey) and by postback.receiver, through a real server and receiver."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterator

import httpx
import pytest
import standardwebhooks
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from svix.api import ApplicationIn, EndpointIn, EndpointSecretRotateIn, MessageIn

from postback import receiver as pbr
from postback import signing
from tests.support.receivers import Received, Receiver, ok
from tests.support.server import ServerHandle
from tests.web.test_web_http import csrf_of, portal_client

# Generous: a loaded machine answers slowly, and nothing here measures time.
HTTP = httpx.Client(timeout=30)

# Svix's README and tests: this secret key, its public key, and what it signs.
SVIX_SK = (
    "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg=="
)
SVIX_PK = "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4="
SVIX_SIGNATURE = (
    "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with Receiver() as r:
        r.route("/hook", ok())
        yield r


def _independent_verify(public: str, got: Received) -> bool:
    """Verify with cryptography alone: nothing of postback's signing code."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    content = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode()
    verified = 0
    for candidate in got.headers["webhook-signature"].split():
        assert candidate.startswith("v1a,"), candidate
        key.verify(base64.b64decode(candidate[4:]), content + got.body)  # raises if bad
        verified += 1
    return verified > 0


def test_svix_test_vector() -> None:
    key = signing.decode_signing_key(SVIX_SK)
    body = b'{"test": 2432232314}'
    assert signing.sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == SVIX_SIGNATURE
    assert signing.public_secret(SVIX_SK) == SVIX_PK
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,bm90IGl0 " + SVIX_SIGNATURE,
    }
    assert pbr.verify(body, headers, SVIX_PK, now=1614265330) == {"test": 2432232314}
    with pytest.raises(pbr.SignatureMismatchError):
        pbr.verify(body + b" ", headers, SVIX_PK, now=1614265330)
    other = signing.public_secret(signing.generate_ed25519_secret())
    with pytest.raises(pbr.SignatureMismatchError):
        pbr.verify(body, headers, other, now=1614265330)


def test_malformed_keys_are_refused() -> None:
    raw = base64.b64decode(SVIX_SK.removeprefix("whsk_"))
    mixed = "whsk_" + base64.b64encode(raw[:32] + bytes(32)).decode()
    with pytest.raises(ValueError, match="public half does not belong"):
        signing.decode_signing_key(mixed)
    with pytest.raises(ValueError, match="64 bytes"):
        signing.decode_signing_key("whsk_" + base64.b64encode(raw[:32]).decode())
    with pytest.raises(ValueError, match="cannot sign"):
        signing.decode_signing_key(SVIX_PK)
    with pytest.raises(ValueError, match="unusable webhook secret"):
        pbr.signing_key("whpk_AAAA")


def test_the_api_refuses_unusable_keys_naming_the_field(server: ServerHandle) -> None:
    app = server.svix().application.create(ApplicationIn(name="keys")).id
    auth = {"authorization": f"Bearer {server.token}"}
    base = f"{server.url}/api/v1/app/{app}/endpoint"
    raw = base64.b64decode(SVIX_SK.removeprefix("whsk_"))
    mixed = "whsk_" + base64.b64encode(raw[:32] + raw[:32]).decode()
    for bad in (SVIX_PK, mixed, "whsk_not-base64!"):
        answer = HTTP.post(base, json={"url": "https://a.example/h", "secret": bad}, headers=auth)
        assert answer.status_code == 422, bad
        assert answer.json()["detail"][0]["loc"] == ["body", "secret"]
    ep = HTTP.post(base, json={"url": "https://a.example/h"}, headers=auth).json()["id"]
    rotated = HTTP.post(f"{base}/{ep}/secret/rotate", json={"key": SVIX_PK}, headers=auth)
    assert rotated.status_code == 422 and rotated.json()["detail"][0]["loc"] == ["body", "key"]


def test_delivery_signed_with_ed25519(server: ServerHandle, hook: Receiver) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="asym")).id
    ep = svix.endpoint.create(app, EndpointIn(url=hook.url + "/hook", secret=SVIX_SK))
    public = svix.endpoint.get_secret(app, ep.id).key
    assert public == SVIX_PK  # the private key is never read back
    svix.message.create(app, MessageIn(event_type="order.paid", payload={"n": 1}))
    (got,) = hook.wait_for(1, "/hook")
    assert got.headers["svix-signature"] == got.headers["webhook-signature"]
    assert _independent_verify(public, got)
    assert pbr.verify(got.body, got.headers, public) == {"n": 1}
    # HMAC-only receiver libraries (standardwebhooks, svix.webhooks) find no v1 signature.
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(signing.generate_secret()).verify(got.body, got.headers)


def test_rotation_keeps_the_kind_and_signs_with_both(server: ServerHandle, hook: Receiver) -> None:
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="rotate")).id
    ep = svix.endpoint.create(app, EndpointIn(url=hook.url + "/hook", secret=SVIX_SK))
    auth = {"authorization": f"Bearer {server.token}"}
    rotate = f"{server.url}/api/v1/app/{app}/endpoint/{ep.id}/secret/rotate"
    answer = HTTP.post(rotate, json={}, headers=auth)
    assert answer.status_code == 204 and not answer.content  # Svix's answer, by default
    answer = HTTP.get(rotate.removesuffix("/rotate"), headers=auth)
    new_public = answer.json()["key"]
    assert new_public.startswith("whpk_") and new_public != SVIX_PK
    assert svix.endpoint.get_secret(app, ep.id).key == new_public
    svix.message.create(app, MessageIn(event_type="order.paid", payload={"n": 2}))
    (got,) = hook.wait_for(1, "/hook")
    assert len(got.headers["webhook-signature"].split()) == 2  # new key, then the old one
    assert pbr.verify(got.body, got.headers, new_public) == {"n": 2}
    assert pbr.verify(got.body, got.headers, SVIX_PK) == {"n": 2}  # still in its grace
    # Back to HMAC (as Svix allows): v1 for the new secret, v1a for the old key.
    hmac_secret = signing.generate_secret()
    svix.endpoint.rotate_secret(app, ep.id, EndpointSecretRotateIn(key=hmac_secret))
    svix.message.create(app, MessageIn(event_type="order.paid", payload={"n": 3}))
    got = hook.wait_for(2, "/hook")[1]
    assert standardwebhooks.Webhook(hmac_secret).verify(got.body, got.headers) == {"n": 3}
    assert pbr.verify(got.body, got.headers, new_public) == {"n": 3}


@pytest.mark.parametrize(
    ("lang", "label"), [("en", "Public key"), ("es", "Clave pública"), ("pt-BR", "Chave pública")]
)
def test_the_portal_creates_ed25519_endpoints_and_shows_the_public_key(
    server: ServerHandle, hook: Receiver, lang: str, label: str
) -> None:
    app = server.svix().application.create(ApplicationIn(name="portal")).id
    portal = portal_client(server, app)
    portal.cookies.set("pb_lang", lang)
    form = portal.get("/portal/endpoints/new")
    assert 'value="ed25519"' in form.text
    answer = portal.post(
        "/portal/endpoints/new",
        data={
            "csrf": csrf_of(form.text),
            "url": hook.url + "/hook",
            "description": "",
            "scope": "all",
            "signature_type": "ed25519",
        },
    )
    assert answer.status_code == 303, answer.text[:500]
    page = html.unescape(portal.get(answer.headers["location"]).text)
    shown = page.split('id="public-key">', 1)[1].split("<", 1)[0]
    assert shown.startswith("whpk_") and label in page
    assert "whsk_" not in page
    server.svix().message.create(app, MessageIn(event_type="a.b", payload={"p": lang}))
    (got,) = hook.wait_for(1, "/hook")
    assert pbr.verify(got.body, got.headers, shown) == {"p": lang}


def test_the_cli_creates_an_ed25519_endpoint(server: ServerHandle, hook: Receiver) -> None:
    from tests.support.cli import ok_json, pb

    app = server.svix().application.create(ApplicationIn(name="cli")).id
    created = ok_json(server, "endpoint", "create", app, hook.url + "/hook", "--ed25519")
    assert created["secret"].startswith("whpk_")
    shown = pb(server, "endpoint", "create", app, hook.url + "/hook", "--secret", SVIX_SK)
    assert shown.returncode == 0 and f"public key: {SVIX_PK}" in shown.stdout
    server.svix().message.create(app, MessageIn(event_type="a.b", payload={"cli": 1}))
    received = hook.wait_for(2, "/hook")
    keys = {created["secret"], SVIX_PK}
    verified_by = {key for got in received for key in keys if _verifies(got, key)}
    assert verified_by == keys  # each endpoint's deliveries verify with its public key


def _verifies(got: Received, public: str) -> bool:
    try:
        pbr.verify(got.body, got.headers, public)
    except pbr.WebhookVerificationError:
        return False
    return True
