"""The portal's blocked ordering keys of an ordered endpoint (docs/architecture.md,
"Ordered delivery"): retry a key's head now, or skip it after a confirmation, as the API's
…/ordering/retry and …/ordering/skip do."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from postback.web.auth import Viewer, checked_form
from postback.web.portal import PortalViewer, page, store_of
from postback.web.render import WebRoute, see_other

router = APIRouter(prefix="/portal", route_class=WebRoute, include_in_schema=False)


def who(viewer: Viewer) -> str:
    """How a skip from the portal is recorded: the session's token (an operator who
    opened the portal from the dashboard holds a portal token made for it)."""
    return f"app portal token {viewer.session.principal.token_id} (portal)"


@router.post("/endpoints/{endpoint_id}/ordering/retry")
async def retry_head(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    form = await checked_form(request, viewer)
    key = str(form.get("ordering_key") or "")
    await store_of(request).retry_head(viewer.app_id or "", endpoint_id, key)
    return see_other(f"/portal/endpoints/{endpoint_id}?notice=retried#blocked-h")


@router.get("/endpoints/{endpoint_id}/ordering/skip")
async def confirm_skip(
    request: Request, viewer: PortalViewer, endpoint_id: str, key: str = ""
) -> Response:
    store, app_id = store_of(request), viewer.app_id or ""
    ep = await store.get_endpoint(app_id, endpoint_id)
    heads = [h for h in await store.blocked_keys(app_id, ep["id"]) if h["ordering_key"] == key]
    head = heads[0] if heads else None
    back = f"/portal/endpoints/{ep['id']}"
    return await page(
        request, viewer, "portal/confirm_skip.html", endpoint=ep, key=key, head=head, back=back
    )


@router.post("/endpoints/{endpoint_id}/ordering/skip")
async def skip_head(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    form = await checked_form(request, viewer)
    key = str(form.get("ordering_key") or "")
    await store_of(request).skip_head(viewer.app_id or "", endpoint_id, key, who(viewer))
    return see_other(f"/portal/endpoints/{endpoint_id}?notice=skipped#blocked-h")
