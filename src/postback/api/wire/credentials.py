"""Wire models of an endpoint's credentials toward its receiver, in Svix's names where Svix
has them (``EndpointMtlsConfigIn.identity``, ``EndpointOauthConfigIn``): a TLS client
certificate (mTLS) with an optional CA bundle, and OAuth2 client credentials. Secrets go in,
never out: the answers show a certificate's fingerprint, subject and expiry, and an OAuth2
configuration without its client secret."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from postback.api.wire.common import Url, Wire
from postback.credentials import parse_ca_bundle, parse_identity

PARAM_NAME = r"^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$"


def _identity(pem: str | None) -> str | None:
    if pem is not None:
        parse_identity(pem)
    return pem


def _ca_bundle(pem: str | None) -> str | None:
    if pem is not None:
        parse_ca_bundle(pem)
    return pem


Identity = Annotated[str, AfterValidator(_identity)]
CaBundle = Annotated[str, AfterValidator(_ca_bundle)]
Token = Annotated[str, Field(min_length=1, max_length=1024)]
Scopes = Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=50)]


class MtlsIn(Wire):
    """``identity``: a PEM with the private key and the client certificate (then any
    intermediates); ``caBundle`` (postback's own): PEM CA certificates, the only roots
    trusted for this endpoint's receiver (a private CA). One of the two at least."""

    identity: Identity | None = None
    ca_bundle: CaBundle | None = None

    @model_validator(mode="after")
    def _something(self) -> MtlsIn:
        if self.identity is None and self.ca_bundle is None:
            raise ValueError("give identity (a client certificate and key), caBundle, or both")
        return self


class CaBundleOut(Wire):
    certificates: int
    subjects: list[str]


class MtlsConfigOut(Wire):
    """The client certificate as it may be shown (its key never is)."""

    fingerprint: str | None = None  # SHA-256 of the certificate, hex pairs
    subject: str | None = None
    issuer: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    ca_bundle: CaBundleOut | None = None


class MtlsOut(Wire):
    enabled: bool
    config: MtlsConfigOut | None = None


ExtraParams = dict[
    Annotated[str, Field(min_length=1, max_length=256, pattern=PARAM_NAME)],
    Annotated[str, Field(max_length=4096)],
]
# Parameters of the token request postback sets itself.
_OWN_PARAMS = frozenset({"grant_type", "client_id", "client_secret", "scope", "audience"})


class OAuthIn(Wire):
    """RFC 6749 §4.4: the token is requested from ``tokenUrl`` with the client id and secret,
    sent as HTTP Basic (``clientSecretBasic``) or in the form body (``clientSecretPost``),
    and sent to the receiver as ``Authorization: Bearer``. ``audience`` is postback's own
    (sent as the ``audience`` parameter, as Auth0 and others expect)."""

    grant_type: Literal["clientCredentials"] = "clientCredentials"
    auth_method: Literal["clientSecretBasic", "clientSecretPost"] = "clientSecretBasic"
    client_id: Token
    client_secret: Token
    token_url: Url
    scopes: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=50)]
        | None
    ) = None
    audience: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    extra_params: ExtraParams | None = None

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, data: Any) -> Any:
        # Said plainly, rather than as an enum mismatch: Svix defines them, postback does not
        # do them (yet).
        if isinstance(data, dict):
            if data.get("grantType") == "refreshToken":
                raise ValueError("grantType refreshToken is not supported: use clientCredentials")
            if data.get("authMethod") == "clientSecretJwt":
                raise ValueError(
                    "authMethod clientSecretJwt is not supported: use clientSecretBasic "
                    "or clientSecretPost"
                )
        return data

    @model_validator(mode="after")
    def _params(self) -> OAuthIn:
        taken = sorted(_OWN_PARAMS.intersection(self.extra_params or {}))
        if taken:
            raise ValueError(f"extraParams may not set {', '.join(taken)}: postback sets them")
        if any(c.isspace() for s in self.scopes or () for c in s):
            raise ValueError("a scope may not contain spaces (give each scope apart)")
        return self


class OAuthConfigOut(Wire):
    grant_type: str
    auth_method: str
    client_id: str
    token_url: str
    scopes: list[str] | None = None
    audience: str | None = None
    extra_params: dict[str, str] | None = None


class OAuthOut(Wire):
    enabled: bool
    config: OAuthConfigOut | None = None


def mtls_out(info: dict[str, Any] | None) -> MtlsOut:
    if not info:
        return MtlsOut(enabled=False)
    return MtlsOut(enabled=True, config=MtlsConfigOut.model_validate(info))


def oauth_out(info: dict[str, Any] | None) -> OAuthOut:
    if not info:
        return OAuthOut(enabled=False)
    return OAuthOut(enabled=True, config=OAuthConfigOut.model_validate(info))
