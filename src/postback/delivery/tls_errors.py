"""TLS failures of a delivery, said plainly in its attempt: the receiver's certificate not
trusted, a client certificate demanded, refused or expired."""

from __future__ import annotations

import ssl

import aiohttp

# OpenSSL's alert names (as they appear in its messages) and what they mean for a delivery.
_ALERTS = {
    "CERTIFICATE_REQUIRED": "the receiver requires a client certificate (mTLS) and none was sent",
    "CERTIFICATE_EXPIRED": "the receiver refused the client certificate: it has expired",
    "UNKNOWN_CA": "the receiver does not trust the client certificate's issuer",
    "BAD_CERTIFICATE": "the receiver refused the client certificate",
    "CERTIFICATE_UNKNOWN": "the receiver refused the client certificate",
    "HANDSHAKE_FAILURE": "the TLS handshake failed (no protocol or cipher in common)",
}


def tls_problem(exc: BaseException) -> str | None:
    """The attempt's text for a TLS failure, or None if ``exc`` is not one."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = exc.certificate_error
        text = getattr(reason, "verify_message", None) or str(reason)
        return f"TLS: the receiver's certificate is not trusted ({text})"
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        message = str(seen).upper()
        for alert, meaning in _ALERTS.items():
            if alert in message and ("ALERT" in message or isinstance(seen, ssl.SSLError)):
                return f"TLS: {meaning}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS: {seen.reason or seen}"
        seen = getattr(seen, "os_error", None) or seen.__cause__ or seen.__context__
    return None
