"""How an endpoint proves who is calling (``endpoint create``'s mTLS and OAuth2 options) and
which key signs for it (ed25519), as the API's fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from postback.cli.common import fail

AUTH_METHODS = {"basic": "clientSecretBasic", "body": "clientSecretPost"}


def mtls_body(cert: Path | None, key: Path | None, ca: Path | None) -> dict[str, Any] | None:
    """The API's ``mtls`` from PEM files: the key and certificate go as one identity."""
    if cert is None and key is None and ca is None:
        return None
    if key is not None and cert is None:
        fail("--client-key needs --client-cert")
    try:
        identity = ((key.read_text() if key else "") + cert.read_text()) if cert else None
        return {"identity": identity, "caBundle": ca.read_text() if ca else None}
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}")


def oauth_body(
    token_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    scopes: list[str] | None,
    audience: str | None,
    auth_method: str,
) -> dict[str, Any] | None:
    """The API's ``oauth`` (client credentials), or None when no OAuth2 option was given."""
    if not (token_url or client_id or client_secret):
        return None
    method = AUTH_METHODS.get(auth_method)
    if method is None:
        fail("--oauth-auth-method is basic or body")
    return {
        "tokenUrl": token_url,
        "clientId": client_id,
        "clientSecret": client_secret,
        "scopes": scopes or None,
        "audience": audience,
        "authMethod": method,
    }


def ed25519_secret() -> str:
    from postback.signing import generate_ed25519_secret  # loads cryptography: only here

    return generate_ed25519_secret()


def key_label(key: str) -> str:
    """What ``endpoint create`` prints the key as: an ed25519 endpoint shows its public key."""
    return "public key" if key.startswith("whpk_") else "signing secret"
