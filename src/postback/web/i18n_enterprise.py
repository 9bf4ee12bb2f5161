"""Translations for enterprise delivery on the portal's endpoint pages: ed25519 signatures,
client certificates (mTLS) and OAuth2 client credentials (merged into ``i18n.TEXTS``)."""

from __future__ import annotations

# English -> (Spanish, Brazilian Portuguese)
ENTERPRISE_TEXTS: dict[str, tuple[str, str]] = {
    "Signature": ("Firma", "Assinatura"),
    "Signature: Ed25519": ("Firma: Ed25519", "Assinatura: Ed25519"),
    "HMAC-SHA256: a shared secret (whsec_)": (
        "HMAC-SHA256: un secreto compartido (whsec_)",
        "HMAC-SHA256: um segredo compartilhado (whsec_)",
    ),
    "Ed25519: you verify with a public key (whpk_)": (
        "Ed25519: usted verifica con una clave pública (whpk_)",
        "Ed25519: você verifica com uma chave pública (whpk_)",
    ),
    "Deliveries are signed with a private key only postback holds (v1a signatures). "
    "Verify them with this public key.": (
        "Las entregas se firman con una clave privada que solo postback tiene (firmas "
        "v1a). Verifíquelas con esta clave pública.",
        "As entregas são assinadas com uma chave privada que só o postback tem "
        "(assinaturas v1a). Verifique-as com esta chave pública.",
    ),
    "Public key": ("Clave pública", "Chave pública"),
}
