"""/api/v1/auth: app-portal access for one application, and ending it."""

from __future__ import annotations

from fastapi import HTTPException, Request, Response

from postback.api.deps import OPERATOR, PrincipalDep, SettingsDep, StoreDep, bearer_token
from postback.api.routing import SlashRouter
from postback.api.wire.auth import ApplicationTokenExpireIn, AppPortalAccessIn, AppPortalAccessOut
from postback.store.errors import NotFound

router = SlashRouter(prefix="/api/v1/auth", tags=["Authentication"])


@router.post(
    "/app-portal-access/{app_id}", response_model=AppPortalAccessOut, dependencies=OPERATOR
)
async def app_portal_access(
    app_id: str,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    body: AppPortalAccessIn | None = None,
) -> dict:
    """A token (and portal link) that can use every route of this one application, until it
    expires (``expiry`` seconds; default POSTBACK_APP_TOKEN_TTL)."""
    body = body or AppPortalAccessIn()
    try:
        app = await store.get_app(app_id)
    except NotFound:
        if body.application is None:
            raise
        inline = body.application.model_dump() | {"uid": body.application.uid or app_id}
        app = await store.create_app(inline)
    ttl = body.expiry or settings.app_token_ttl
    token, _ = await store.create_app_token(app["id"], ttl, read_only=bool(body.read_only))
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    # In the fragment, the token never reaches a server log or a Referer header.
    return {"url": f"{base}/portal/#token={token}", "token": token}


@router.post("/app/{app_id}/expire-all", status_code=204, dependencies=OPERATOR)
async def expire_all(
    app_id: str, store: StoreDep, body: ApplicationTokenExpireIn | None = None
) -> Response:
    """End every portal token of the application (after ``expiry`` seconds, default 0)."""
    app = await store.get_app(app_id)
    await store.expire_app_tokens(app["id"], (body.expiry if body else None) or 0)
    return Response(status_code=204)


@router.post("/logout", status_code=204)
async def logout(request: Request, principal: PrincipalDep, store: StoreDep) -> Response:
    """End the portal token this request carries. Svix: "Trying to log out other tokens
    will fail": an operator token may not (403), it is revoked with `postback token revoke`."""
    if principal.is_operator:
        raise HTTPException(403, "operator tokens are revoked with `postback token revoke`")
    await store.revoke_app_token(bearer_token(request))
    return Response(status_code=204)
