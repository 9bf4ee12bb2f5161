"""Credentials an endpoint presents to its receiver: a TLS client certificate (mTLS) with an
optional CA bundle to trust a receiver's private CA, and OAuth2 client credentials.

Parsed and checked once, when they are saved (the API's models call ``parse_identity`` and
``parse_ca_bundle``); what may be shown of them (fingerprint, subject, expiry) is computed
here too. The sender builds an ``ssl.SSLContext`` from the PEM text (``client_context``).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

MAX_PEM = 64 * 1024  # a certificate chain and its key; a CA bundle of a few dozen roots
MAX_CA_CERTIFICATES = 100
KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)


@dataclass(frozen=True)
class TlsConfig:
    """What the sender needs: PEM text (key + certificate chain) and a CA bundle."""

    identity: str | None = None
    ca_bundle: str | None = None
    not_after: datetime | None = None  # the client certificate's

    @property
    def key(self) -> tuple[str | None, str | None]:
        return (self.identity, self.ca_bundle)


@dataclass(frozen=True)
class OAuthConfig:
    """RFC 6749 §4.4 client credentials for one endpoint."""

    token_url: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    auth_method: str = "clientSecretBasic"  # or clientSecretPost
    extra_params: tuple[tuple[str, str], ...] = ()


def _certificates(pem: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return []


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def certificate_info(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "fingerprint": _fingerprint(cert),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "notBefore": cert.not_valid_before_utc.isoformat(),
        "notAfter": cert.not_valid_after_utc.isoformat(),
    }


def _public_bytes(key: Any) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def parse_identity(pem: str, now: datetime | None = None) -> dict[str, Any]:
    """Check a PEM holding a private key and its certificate (then any intermediates);
    return what may be shown of the certificate. ValueError says what is wrong."""
    if len(pem) > MAX_PEM:
        raise ValueError(f"the PEM is longer than {MAX_PEM} characters")
    if "-----BEGIN" not in pem:
        raise ValueError(
            "not PEM: expected -----BEGIN PRIVATE KEY----- and -----BEGIN CERTIFICATE-----"
        )
    certs = _certificates(pem)
    if not certs:
        raise ValueError("no readable certificate in the PEM (-----BEGIN CERTIFICATE-----)")
    key = _private_key(pem)
    leaf = certs[0]
    if _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
        raise ValueError(
            "the private key does not match the certificate (the first one in the PEM)"
        )
    now = now or datetime.now(UTC)
    if leaf.not_valid_after_utc <= now:
        raise ValueError(f"the certificate expired on {leaf.not_valid_after_utc.isoformat()}")
    return certificate_info(leaf)


def _private_key(pem: str) -> Any:
    begin = pem.find("-----BEGIN ")
    blocks = []
    while begin != -1:
        end_marker = pem.find("-----END ", begin)
        close = pem.find("-----", end_marker + 9) if end_marker != -1 else -1
        if close == -1:
            break
        block = pem[begin : close + 5]
        if "PRIVATE KEY-----" in block.splitlines()[0]:
            blocks.append(block)
        begin = pem.find("-----BEGIN ", close + 5)
    if not blocks:
        raise ValueError("no private key in the PEM (-----BEGIN PRIVATE KEY-----)")
    if len(blocks) > 1:
        raise ValueError("more than one private key in the PEM")
    if "ENCRYPTED" in blocks[0].splitlines()[0]:
        raise ValueError("the private key is encrypted: give it without a passphrase")
    try:
        key = serialization.load_pem_private_key(blocks[0].encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("the private key in the PEM cannot be read") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ValueError("the private key must be RSA, EC or Ed25519")
    return key


def parse_ca_bundle(pem: str) -> dict[str, Any]:
    """Check a PEM of CA certificates; return their count and subjects."""
    if len(pem) > MAX_PEM:
        raise ValueError(f"the CA bundle is longer than {MAX_PEM} characters")
    certs = _certificates(pem)
    if not certs:
        raise ValueError("no readable certificate in the CA bundle (-----BEGIN CERTIFICATE-----)")
    if len(certs) > MAX_CA_CERTIFICATES:
        raise ValueError(f"at most {MAX_CA_CERTIFICATES} certificates in a CA bundle")
    if "PRIVATE KEY" in pem:
        raise ValueError("a CA bundle holds certificates only, not a private key")
    return {"certificates": len(certs), "subjects": [c.subject.rfc4514_string() for c in certs]}


def expiry_of(identity: str) -> datetime:
    return _certificates(identity)[0].not_valid_after_utc


def client_context(config: TlsConfig) -> ssl.SSLContext:
    """The TLS context of deliveries to one endpoint: its client certificate, and the CA
    bundle as the only roots trusted when it has one (else the system's)."""
    context = (
        ssl.create_default_context(cadata=config.ca_bundle)
        if config.ca_bundle
        else ssl.create_default_context()
    )
    if config.identity:
        # The ssl module reads a certificate chain from files only: a private temporary file
        # (0600), removed as soon as it is read.
        fd, path = tempfile.mkstemp(prefix="postback-identity-", suffix=".pem")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(config.identity)
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
    return context
