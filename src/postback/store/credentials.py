"""An endpoint's credentials toward its receiver, as stored: sealed JSON (``tls``, ``oauth``)
beside what may be shown (``tls_info``, ``oauth_info``), and the warning sent before a client
certificate expires (an operational webhook, ``endpoint.certificate.expiring``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback.credentials import (
    OAuthConfig,
    TlsConfig,
    certificate_info,
    expiry_of,
    parse_ca_bundle,
)
from postback.store import schema as t
from postback.store.core import StoreCore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
ENDPOINT_CERTIFICATE_EXPIRING = "endpoint.certificate.expiring"
CERTIFICATE_WARNING = timedelta(days=14)
Seal = Callable[[str, str], str]


def credential_columns(seal: Seal, endpoint_id: str, values: Row) -> Row:
    """The columns for ``values["mtls"]`` / ``values["oauth"]`` (the API's checked models as
    dicts; None removes them); keys absent from ``values`` change nothing."""
    columns: Row = {}
    if "mtls" in values:
        columns |= _tls_columns(seal, endpoint_id, values["mtls"])
    if "oauth" in values:
        columns |= _oauth_columns(seal, endpoint_id, values["oauth"])
    return columns


def _tls_columns(seal: Seal, endpoint_id: str, mtls: Row | None) -> Row:
    none = {"tls": None, "tls_info": None, "client_cert_expires_at": None}
    if not mtls:
        return none | {"client_cert_warned_at": None}
    identity, ca_bundle = mtls.get("identity"), mtls.get("ca_bundle")
    info: Row = {}
    expires = None
    if identity:
        from cryptography import x509

        leaf = x509.load_pem_x509_certificates(identity.encode())[0]
        info |= certificate_info(leaf)
        expires = expiry_of(identity)
    if ca_bundle:
        info["caBundle"] = parse_ca_bundle(ca_bundle)
    sealed = seal(json.dumps({"identity": identity, "caBundle": ca_bundle}), endpoint_id)
    return {
        "tls": sealed,
        "tls_info": info,
        "client_cert_expires_at": expires,
        "client_cert_warned_at": None,  # a new certificate is warned about afresh
    }


def _oauth_columns(seal: Seal, endpoint_id: str, oauth: Row | None) -> Row:
    if not oauth:
        return {"oauth": None, "oauth_info": None}
    shown = {
        "grantType": oauth.get("grant_type") or "clientCredentials",
        "authMethod": oauth.get("auth_method") or "clientSecretBasic",
        "clientId": oauth["client_id"],
        "tokenUrl": oauth["token_url"],
        "scopes": oauth.get("scopes") or None,
        "audience": oauth.get("audience"),
        "extraParams": oauth.get("extra_params") or None,
    }
    sealed = seal(json.dumps(shown | {"clientSecret": oauth.get("client_secret")}), endpoint_id)
    return {"oauth": sealed, "oauth_info": shown}


def open_tls(text: str) -> TlsConfig:
    data = json.loads(text)
    identity = data.get("identity")
    return TlsConfig(
        identity=identity,
        ca_bundle=data.get("caBundle"),
        not_after=expiry_of(identity) if identity else None,
    )


def open_oauth(text: str) -> OAuthConfig:
    data = json.loads(text)
    return OAuthConfig(
        token_url=data["tokenUrl"],
        client_id=data["clientId"],
        client_secret=data.get("clientSecret"),
        scopes=tuple(data.get("scopes") or ()),
        audience=data.get("audience"),
        auth_method=data.get("authMethod") or "clientSecretBasic",
        extra_params=tuple(sorted((data.get("extraParams") or {}).items())),
    )


class CredentialsMixin(StoreCore):
    if TYPE_CHECKING:  # another part's method, declared for the type checker only

        async def _emit_endpoint_event(
            self, conn: AsyncConnection, event_type: str, ep: Row, **extra: Any
        ) -> None: ...

    async def warn_expiring_certificates(self, within: timedelta = CERTIFICATE_WARNING) -> int:
        """Send ``endpoint.certificate.expiring`` once for each client certificate that
        expires within ``within``; returns how many. Several workers may run this at once:
        the UPDATE that marks a certificate warned is what claims it, so one warns."""
        now = self.clock()
        e = t.endpoints.c
        due = (
            sa.select(e.id)
            .where(e.client_cert_expires_at.is_not(None))
            .where(e.client_cert_expires_at <= now + within)
            .where(e.client_cert_warned_at.is_(None))
            .limit(100)
        )
        sent = 0
        async with self.engine.begin() as conn:
            for ep_id in list(await conn.scalars(due)):
                marked = await conn.execute(
                    t.endpoints.update()
                    .where(e.id == ep_id, e.client_cert_warned_at.is_(None))
                    .values(client_cert_warned_at=now)
                    .returning(e.id, e.app_id, e.uid, e.tls_info, e.client_cert_expires_at)
                )
                row = marked.first()
                if row is None:
                    continue  # another worker warned first
                info = row.tls_info or {}
                await self._emit_endpoint_event(
                    conn,
                    ENDPOINT_CERTIFICATE_EXPIRING,
                    dict(row._mapping),
                    fingerprint=info.get("fingerprint"),
                    subject=info.get("subject"),
                    notAfter=row.client_cert_expires_at.isoformat(),
                    expired=row.client_cert_expires_at <= now,
                )
                sent += 1
        return sent
