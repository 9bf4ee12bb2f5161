"""mTLS client certificates and CA bundles: checked when saved (a malformed PEM, a key that is
not the certificate's, an expired certificate are 422s naming the field), sealed at rest,
never shown, presented to TLS receivers made from a CA created here (one demanding a client
certificate, one signed by a private CA), through the egress proxies too; and the warning
webhook before a certificate expires."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from svix.api import ApplicationIn, MessageIn

from postback.credentials import TlsConfig, expiry_of
from postback.delivery.sender import Sender
from postback.delivery.ssrf import NetworkPolicy, parse_networks
from postback.domain import ClaimedDelivery, TriggerType
from postback.signing import decode_secret, generate_secret
from postback.store import schema as t
from postback.store.operational import OPERATIONAL_APP_ID
from postback.store.store import Store
from tests.support.proxies import ForwardProxy
from tests.support.server import ServerHandle
from tests.support.tls_certs import CertificateAuthority, TlsReceiver, server_context

# Generous: a loaded machine answers slowly, and nothing here measures time.
HTTP = httpx.Client(timeout=30)

SERVER_CA = CertificateAuthority("receiver private CA")
CLIENT_CA = CertificateAuthority("client CA")
CLIENT = CLIENT_CA.issue("shop-sender")
ONLY_LOCALHOST = NetworkPolicy(allowed=parse_networks("127.0.0.1/32"))


@pytest.fixture
def mtls_receiver(tmp_path: Path) -> Iterator[TlsReceiver]:
    """Demands a client certificate from CLIENT_CA; its own is from SERVER_CA."""
    with TlsReceiver(server_context(tmp_path, SERVER_CA, client_ca=CLIENT_CA)) as r:
        r.route("/hook", 200, "mutual")
        yield r


@pytest.fixture
def private_ca_receiver(tmp_path: Path) -> Iterator[TlsReceiver]:
    with TlsReceiver(server_context(tmp_path, SERVER_CA)) as r:
        r.route("/hook", 200, "private")
        yield r


def _auth(server: ServerHandle) -> dict[str, str]:
    return {"authorization": f"Bearer {server.token}"}


def _base(server: ServerHandle) -> str:
    app = server.svix().application.create(ApplicationIn(name="mtls")).id
    return f"{server.url}/api/v1/app/{app}/endpoint"


def _delivery(url: str, tls: TlsConfig | None) -> ClaimedDelivery:
    return ClaimedDelivery(
        "dlv_1", "l", "msg_1", "app_1", "ep_1", url, (decode_secret(generate_secret()),), {},
        b"{}", 0, TriggerType.SCHEDULED, tls,
    )  # fmt: skip


def _detail(answer: httpx.Response) -> dict:
    assert answer.status_code == 422, answer.text
    (detail,) = answer.json()["detail"]
    return detail


def test_bad_pem_is_a_422_naming_the_field(server: ServerHandle) -> None:
    base = _base(server)
    other = CLIENT_CA.issue("other")
    expired = CLIENT_CA.issue(
        "old", not_before=datetime.now(UTC) - timedelta(days=9), not_after=datetime.now(UTC)
    )
    cases = {
        "not a pem": "not PEM",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n": "no readable",
        CLIENT.cert_pem: "no private key",
        CLIENT.key_pem + other.cert_pem: "does not match the certificate",
        expired.identity: "expired",
    }
    for pem, why in cases.items():
        body = {"url": "https://hooks.example/h", "mtls": {"identity": pem}}
        detail = _detail(HTTP.post(base, json=body, headers=_auth(server)))
        assert detail["loc"] == ["body", "mtls", "identity"] and why in detail["msg"], detail
    ep = HTTP.post(base, json={"url": "https://hooks.example/h"}, headers=_auth(server)).json()
    mtls = f"{base}/{ep['id']}/mtls"
    detail = _detail(HTTP.put(mtls, json={"identity": "garbage"}, headers=_auth(server)))
    assert detail["loc"] == ["body", "identity"]
    detail = _detail(HTTP.put(mtls, json={"caBundle": CLIENT.key_pem}, headers=_auth(server)))
    assert detail["loc"] == ["body", "caBundle"]
    assert HTTP.put(mtls, json={}, headers=_auth(server)).status_code == 422


def test_the_key_is_sealed_and_never_shown(server: ServerHandle) -> None:
    base = _base(server)
    body = {
        "url": "https://hooks.example/h",
        "mtls": {"identity": CLIENT.identity, "caBundle": SERVER_CA.pem},
    }
    created = HTTP.post(base, json=body, headers=_auth(server))
    assert created.status_code == 201, created.text
    ep = created.json()
    config = ep["mtls"]["config"]
    assert ep["mtls"]["enabled"] is True
    assert config["subject"] == "CN=shop-sender,O=postback tests"
    assert config["issuer"] == "CN=client CA,O=postback tests"
    assert config["notAfter"] == expiry_of(CLIENT.identity).isoformat()
    assert len(config["fingerprint"].split(":")) == 32
    assert config["caBundle"] == {
        "certificates": 1,
        "subjects": ["CN=receiver private CA,O=postback tests"],
    }
    answers = [
        created,
        HTTP.get(f"{base}/{ep['id']}", headers=_auth(server)),
        HTTP.get(base, headers=_auth(server)),
        HTTP.get(f"{base}/{ep['id']}/mtls", headers=_auth(server)),
    ]
    for answer in answers:
        assert answer.status_code == 200 or answer is created
        assert "PRIVATE KEY" not in answer.text and "BEGIN CERTIFICATE" not in answer.text
    assert answers[3].json() == ep["mtls"]

    async def stored(store: Store) -> dict:
        async with store.engine.connect() as conn:
            row = await conn.execute(sa.select(t.endpoints).where(t.endpoints.c.id == ep["id"]))
            return dict(row.one()._mapping)

    row = server.call(stored)
    assert row["tls"].startswith("enc:v1:") and "PRIVATE" not in row["tls"]
    assert "PRIVATE KEY" not in json.dumps(row, default=str)
    # Deleted: gone, and the endpoint shows no certificate.
    assert HTTP.delete(f"{base}/{ep['id']}/mtls", headers=_auth(server)).status_code == 204
    after = HTTP.get(f"{base}/{ep['id']}", headers=_auth(server)).json()
    assert after["mtls"] == {"enabled": False, "config": None}
    assert server.call(stored)["tls"] is None


def _send(server: ServerHandle, url: str, mtls: dict | None) -> list[dict]:
    """One endpoint in an application of its own, one message: its first attempt."""
    base = _base(server)
    body: dict = {"url": url} | ({"mtls": mtls} if mtls else {})
    created = HTTP.post(base, json=body, headers=_auth(server))
    assert created.status_code == 201, created.text
    ep = created.json()["id"]
    app = base.rsplit("/endpoint", 1)[0]
    server.svix().message.create(app.rsplit("/", 1)[1], MessageIn(event_type="a.b", payload={}))
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while True:
        got = HTTP.get(f"{app}/attempt/endpoint/{ep}", headers=_auth(server)).json()["data"]
        if got:
            return got
        assert datetime.now(UTC) < deadline, "no attempt"


def test_deliveries_present_the_client_certificate(
    server: ServerHandle, mtls_receiver: TlsReceiver
) -> None:
    url = mtls_receiver.url + "/hook"
    with_cert = _send(server, url, {"identity": CLIENT.identity, "caBundle": SERVER_CA.pem})
    assert with_cert[0]["responseStatusCode"] == 200 and with_cert[0]["response"] == "mutual"
    assert mtls_receiver.client_subjects == ["shop-sender"]
    without = _send(server, url, {"caBundle": SERVER_CA.pem})
    assert without[0]["responseStatusCode"] == 0
    assert "requires a client certificate" in without[0]["response"], without[0]
    untrusted = _send(server, url, {"identity": CLIENT.identity})  # no CA bundle
    assert "TLS: the receiver's certificate is not trusted" in untrusted[0]["response"]
    assert len(mtls_receiver.received("/hook")) == 1


def test_a_receiver_with_a_private_ca(
    server: ServerHandle, private_ca_receiver: TlsReceiver
) -> None:
    url = private_ca_receiver.url + "/hook"
    trusted = _send(server, url, {"caBundle": SERVER_CA.pem})
    assert trusted[0]["responseStatusCode"] == 200 and trusted[0]["response"] == "private"
    plain = _send(server, url, None)
    assert plain[0]["response"] == (
        "TLS: the receiver's certificate is not trusted (unable to get local issuer certificate)"
    )
    wrong = _send(server, url, {"caBundle": CLIENT_CA.pem})  # another CA
    assert "not trusted" in wrong[0]["response"]


async def test_an_expired_certificate_fails_clearly(mtls_receiver: TlsReceiver) -> None:
    now = datetime.now(UTC)
    old = CLIENT_CA.issue("expired", not_before=now - timedelta(days=9), not_after=now)
    url = mtls_receiver.url + "/hook"
    async with Sender(timeout=5, allow_private_networks=True) as sender:
        # As stored: postback knows when it expired and does not send it.
        known = TlsConfig(old.identity, SERVER_CA.pem, not_after=old.cert.not_valid_after_utc)
        refused_here = await sender.send(_delivery(url, known))
        # Presented anyway: the receiver refuses it, and the attempt says so.
        presented = await sender.send(_delivery(url, TlsConfig(old.identity, SERVER_CA.pem)))
    assert refused_here.error == (
        f"not sent: the client certificate expired at {old.cert.not_valid_after_utc.isoformat()}"
    )
    assert presented.status_code == 0 and (presented.error or "").startswith("TLS: the receiver")
    assert "expired" in (presented.error or ""), presented.error
    assert mtls_receiver.received() == []


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_mtls_through_the_egress_proxy(
    kind: str, mtls_receiver: TlsReceiver, tmp_path: Path
) -> None:
    with ForwardProxy(tmp_path, kind) as proxy:
        async with Sender(timeout=5, policy=ONLY_LOCALHOST, egress_proxy=proxy.url) as sender:
            tls = TlsConfig(CLIENT.identity, SERVER_CA.pem)
            result = await sender.send(_delivery(mtls_receiver.url + "/hook", tls))
        assert proxy.connections() == [mtls_receiver.url.split("//", 1)[1]]  # CONNECT / tunnel
    assert result.ok and result.response == "mutual", result.error
    assert mtls_receiver.client_subjects == ["shop-sender"]


async def test_a_warning_before_the_certificate_expires(store: Store) -> None:
    app = await store.create_app({"name": "expiry"})
    soon = CLIENT_CA.issue("soon", not_after=datetime.now(UTC) + timedelta(days=10))
    later = CLIENT_CA.issue("later", not_after=datetime.now(UTC) + timedelta(days=60))
    values = {"url": "https://h.example/", "secret": generate_secret()}
    a = await store.create_endpoint(app["id"], values | {"mtls": {"identity": soon.identity}})
    await store.create_endpoint(app["id"], values | {"mtls": {"identity": later.identity}})
    assert await store.warn_expiring_certificates() == 1
    assert await store.warn_expiring_certificates() == 0  # once per certificate
    events = await _operational(store)
    assert [e["type"] for e in events] == ["endpoint.certificate.expiring"]
    data = events[0]["data"]
    assert data["endpointId"] == a["id"] and data["subject"] == "CN=soon,O=postback tests"
    assert data["notAfter"] == soon.cert.not_valid_after_utc.isoformat()
    assert data["expired"] is False
    # A new certificate is warned about afresh when its own time comes.
    renewed = CLIENT_CA.issue("renewed", not_after=datetime.now(UTC) + timedelta(days=5))
    await store.update_endpoint(app["id"], a["id"], {"mtls": {"identity": renewed.identity}})
    assert await store.warn_expiring_certificates() == 1


async def _operational(store: Store) -> list[dict]:
    m = t.messages.c
    stmt = (
        sa.select(m.payload)
        .where(m.app_id == OPERATIONAL_APP_ID, m.event_type.like("endpoint.certificate.%"))
        .order_by(m.id)
    )
    async with store.engine.connect() as conn:
        return [json.loads(p) for p in await conn.scalars(stmt)]


@pytest.mark.parametrize(
    ("lang", "label", "refusal"),
    [
        ("en", "Client certificate", "The client certificate or the CA bundle is not valid."),
        ("es", "Certificado de cliente", "El certificado de cliente o los certificados de CA"),
        ("pt-BR", "Certificado de cliente", "O certificado de cliente ou os certificados de CA"),
    ],
)
def test_the_portal_form_sets_shows_keeps_and_removes_the_certificate(
    server: ServerHandle, mtls_receiver: TlsReceiver, lang: str, label: str, refusal: str
) -> None:
    import html

    from tests.web.test_web_http import csrf_of, portal_client

    app = server.svix().application.create(ApplicationIn(name="portal mtls")).id
    portal = portal_client(server, app)
    portal.cookies.set("pb_lang", lang)
    url = mtls_receiver.url + "/hook"

    def form(path: str, **fields: str) -> httpx.Response:
        csrf = csrf_of(portal.get(path).text)
        base = {"csrf": csrf, "url": url, "description": "", "scope": "all"}
        return portal.post(path, data=base | fields)

    other = CLIENT_CA.issue("other")
    bad = form("/portal/endpoints/new", client_identity=CLIENT.key_pem + other.cert_pem)
    assert bad.status_code == 422 and refusal in html.unescape(bad.text)
    assert "does not match the certificate" in html.unescape(bad.text)
    made = form("/portal/endpoints/new", client_identity=CLIENT.identity, ca_bundle=SERVER_CA.pem)
    assert made.status_code == 303, made.text[:300]
    page = html.unescape(portal.get(made.headers["location"]).text)
    assert label in page and "CN=shop-sender,O=postback tests" in page
    assert "PRIVATE KEY" not in page
    ep_path = made.headers["location"].split("?")[0]
    edit = html.unescape(portal.get(ep_path + "/edit").text)
    assert "PRIVATE KEY-----\n" not in edit and "CN=shop-sender" in edit
    # Saved with the boxes empty: the certificate stays, and deliveries present it.
    assert form(ep_path + "/edit", description="kept").status_code == 303
    server.svix().message.create(app, MessageIn(event_type="a.b", payload={}))
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while not mtls_receiver.received("/hook"):
        assert datetime.now(UTC) < deadline, "not delivered"
    assert mtls_receiver.client_subjects == ["shop-sender"]
    assert form(ep_path + "/edit", remove_mtls="1").status_code == 303
    assert "CN=shop-sender" not in portal.get(ep_path).text


def test_the_cli_sets_the_certificate_from_files(server: ServerHandle, tmp_path: Path) -> None:
    from tests.support.cli import ok_json, pb

    app = server.svix().application.create(ApplicationIn(name="cli mtls")).id
    (tmp_path / "client.crt").write_text(CLIENT.cert_pem)
    (tmp_path / "client.key").write_text(CLIENT.key_pem)
    (tmp_path / "ca.pem").write_text(SERVER_CA.pem)
    files = ["--client-cert", str(tmp_path / "client.crt"), "--client-key"]
    created = ok_json(
        server, "endpoint", "create", app, "https://hooks.example/h",
        *files, str(tmp_path / "client.key"), "--ca-bundle", str(tmp_path / "ca.pem"),
    )  # fmt: skip
    assert created["mtls"]["config"]["subject"] == "CN=shop-sender,O=postback tests"
    assert created["mtls"]["config"]["caBundle"]["certificates"] == 1
    (tmp_path / "other.crt").write_text(CLIENT_CA.issue("other").cert_pem)
    mismatch = pb(
        server, "endpoint", "create", app, "https://hooks.example/h",
        "--client-cert", str(tmp_path / "other.crt"), "--client-key", str(tmp_path / "client.key"),
    )  # fmt: skip
    assert mismatch.returncode != 0 and "does not match the certificate" in mismatch.stderr
