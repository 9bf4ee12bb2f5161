"""…/endpoint/{endpoint_id}/mtls and …/oauth: the credentials an endpoint presents to its
receiver, at Svix's paths (``v1.endpoint.get-mtls``, ``set-mtls-config``, …). PUT answers
204 as Svix does; GET shows the certificate or configuration without its secrets.

Added to both of routes/endpoints.py's routers, as its shared routes are."""

from __future__ import annotations

from fastapi import Response

from postback.api.deps import EndpointApp, SettingsDep, StoreDep
from postback.api.endpoint_rules import check_token_url
from postback.api.routing import Routes
from postback.api.wire import credentials as c

routes = Routes()


@routes.get("/{endpoint_id}/mtls", response_model=c.MtlsOut)
async def get_endpoint_mtls(app: EndpointApp, endpoint_id: str, store: StoreDep) -> c.MtlsOut:
    """The client certificate (fingerprint, subject, issuer, validity) and CA bundle
    deliveries use; never the private key."""
    ep = await store.get_endpoint(app["id"], endpoint_id)
    return c.mtls_out(ep.get("tls_info"))


@routes.put("/{endpoint_id}/mtls", status_code=204)
async def set_endpoint_mtls(
    app: EndpointApp, endpoint_id: str, body: c.MtlsIn, store: StoreDep
) -> Response:
    """Present this client certificate (``identity``: PEM private key and certificate)
    to the receiver, and/or trust only ``caBundle`` for its certificate."""
    await store.update_endpoint(app["id"], endpoint_id, {"mtls": body.model_dump()})
    return Response(status_code=204)


@routes.delete("/{endpoint_id}/mtls", status_code=204)
async def delete_endpoint_mtls(app: EndpointApp, endpoint_id: str, store: StoreDep) -> Response:
    await store.update_endpoint(app["id"], endpoint_id, {"mtls": None})
    return Response(status_code=204)


@routes.get("/{endpoint_id}/oauth", response_model=c.OAuthOut)
async def get_endpoint_oauth(app: EndpointApp, endpoint_id: str, store: StoreDep) -> c.OAuthOut:
    """The OAuth2 client-credentials configuration, without the client secret."""
    ep = await store.get_endpoint(app["id"], endpoint_id)
    return c.oauth_out(ep.get("oauth_info"))


@routes.put("/{endpoint_id}/oauth", status_code=204)
async def set_endpoint_oauth(
    app: EndpointApp, endpoint_id: str, body: c.OAuthIn, store: StoreDep, settings: SettingsDep
) -> Response:
    """Authenticate deliveries with an OAuth2 access token (RFC 6749 §4.4, client
    credentials), fetched from ``tokenUrl`` and sent as ``Authorization: Bearer``."""
    await check_token_url(body.token_url, settings, ["body", "tokenUrl"])
    await store.update_endpoint(app["id"], endpoint_id, {"oauth": body.model_dump()})
    return Response(status_code=204)


@routes.delete("/{endpoint_id}/oauth", status_code=204)
async def delete_endpoint_oauth(app: EndpointApp, endpoint_id: str, store: StoreDep) -> Response:
    await store.update_endpoint(app["id"], endpoint_id, {"oauth": None})
    return Response(status_code=204)
