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
    "Client certificate (mTLS, optional)": (
        "Certificado de cliente (mTLS, opcional)",
        "Certificado de cliente (mTLS, opcional)",
    ),
    "Now": ("Ahora", "Agora"),
    "expires": ("vence", "vence"),
    "CA certificates": ("Certificados de CA", "Certificados de CA"),
    "Pasting a PEM replaces what is stored (both boxes at once); empty boxes keep it. The "
    "private key is stored encrypted and never shown again.": (
        "Pegar un PEM reemplaza lo guardado (ambos cuadros a la vez); los cuadros vacíos lo "
        "conservan. La clave privada se guarda cifrada y no se vuelve a mostrar.",
        "Colar um PEM substitui o que está guardado (os dois campos de uma vez); campos "
        "vazios o mantêm. A chave privada é guardada cifrada e nunca mais é mostrada.",
    ),
    "Private key and certificate (PEM)": (
        "Clave privada y certificado (PEM)",
        "Chave privada e certificado (PEM)",
    ),
    "CA certificates that sign the receiver's certificate (PEM; empty: the usual public CAs)": (
        "Certificados de CA que firman el certificado del receptor (PEM; vacío: las CA "
        "públicas habituales)",
        "Certificados de CA que assinam o certificado do receptor (PEM; vazio: as CAs "
        "públicas de sempre)",
    ),
    "Remove the client certificate and CA certificates": (
        "Quitar el certificado de cliente y los certificados de CA",
        "Remover o certificado de cliente e os certificados de CA",
    ),
    "Client certificate": ("Certificado de cliente", "Certificado de cliente"),
    "Expires soon": ("Vence pronto", "Vence em breve"),
    "Issued by": ("Emitido por", "Emitido por"),
    "SHA-256 fingerprint": ("Huella SHA-256", "Impressão digital SHA-256"),
    "Certificate expires": ("El certificado vence", "O certificado vence"),
    "The client certificate or the CA bundle is not valid.": (
        "El certificado de cliente o los certificados de CA no son válidos.",
        "O certificado de cliente ou os certificados de CA não são válidos.",
    ),
    "The OAuth2 settings are not valid.": (
        "La configuración de OAuth2 no es válida.",
        "A configuração de OAuth2 não é válida.",
    ),
    "OAuth2 client credentials (optional)": (
        "Credenciales de cliente OAuth2 (opcional)",
        "Credenciais de cliente OAuth2 (opcional)",
    ),
    "Client ID": ("ID de cliente", "ID do cliente"),
    "Each delivery carries an access token from your token endpoint (Authorization: "
    "Bearer). Filling the token URL replaces what is stored, client secret included; empty "
    "keeps it.": (
        "Cada entrega lleva un token de acceso de su endpoint de tokens (Authorization: "
        "Bearer). Completar la URL de tokens reemplaza lo guardado, incluido el secreto del "
        "cliente; vacía lo conserva.",
        "Cada entrega leva um token de acesso do seu endpoint de tokens (Authorization: "
        "Bearer). Preencher a URL de tokens substitui o que está guardado, inclusive o "
        "segredo do cliente; vazia o mantém.",
    ),
    "Token URL": ("URL de tokens", "URL de tokens"),
    "Client secret": ("Secreto del cliente", "Segredo do cliente"),
    "Scopes (separated by spaces)": (
        "Alcances (separados por espacios)",
        "Escopos (separados por espaços)",
    ),
    "Audience (optional)": ("Audiencia (opcional)", "Audiência (opcional)"),
    "Send the client secret": ("Enviar el secreto del cliente", "Enviar o segredo do cliente"),
    "In an Authorization: Basic header": (
        "En una cabecera Authorization: Basic",
        "Em um cabeçalho Authorization: Basic",
    ),
    "In the request body": ("En el cuerpo de la solicitud", "No corpo da requisição"),
    "Remove the OAuth2 settings": (
        "Quitar la configuración de OAuth2",
        "Remover a configuração de OAuth2",
    ),
    "OAuth2 token URL": ("URL de tokens OAuth2", "URL de tokens OAuth2"),
    "Scopes": ("Alcances", "Escopos"),
}
