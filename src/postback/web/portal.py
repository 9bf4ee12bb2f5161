"""The app portal: one application's endpoints, as its customer sees them.

The portal link carries the token in the URL fragment (never sent to a server); the entry
page's script posts it to /portal/session, which opens a cookie session."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData

from postback.api.endpoint_rules import no_room
from postback.api.tasks import run_in_background
from postback.delivery.scheduler import Circuit
from postback.domain import MessageStatus, decode_json
from postback.examples import NoSuchExample, example_payload
from postback.filters import project
from postback.operations import UnknownEventType, rotate_endpoint_secret, send_test_event
from postback.signing import generate_ed25519_secret, generate_secret, is_asymmetric, public_secret
from postback.store.credentials import CERTIFICATE_WARNING
from postback.store.pages import Page
from postback.store.store import Store
from postback.web import charts
from postback.web.auth import (
    Viewer,
    checked_form,
    log_in,
    log_out,
    login_page,
    portal_viewer,
)
from postback.web.forms import endpoint_values, format_headers, rules_text
from postback.web.i18n import translator
from postback.web.render import Invalid, WebRoute, language, render, see_other

router = APIRouter(prefix="/portal", route_class=WebRoute, include_in_schema=False)
PortalViewer = Annotated[Viewer, Depends(portal_viewer)]
STATUS_COLOURS = {
    MessageStatus.SUCCESS: charts.GREEN,
    MessageStatus.PENDING: "#b7791f",
    MessageStatus.SENDING: "#2b6cb0",
    MessageStatus.FAIL: charts.RED,
    MessageStatus.CANCELED: charts.GREY,
}


def store_of(request: Request) -> Store:
    return request.app.state.store


async def all_event_types(store: Store) -> list[dict[str, Any]]:
    """The whole (unarchived) catalog, a page at a time; bounded for safety."""
    found: list[dict[str, Any]] = []
    page = Page(limit=250)
    for _ in range(40):
        out = await store.list_event_types(page)
        found.extend(out.rows)
        if out.done or not out.rows:
            break
        page = Page(limit=250, iterator=out.iterator)
    return found


async def page(request: Request, viewer: Viewer, template: str, **context: Any) -> Response:
    """A portal page: the application's name and the session's CSRF token come along."""
    app = await store_of(request).get_app(viewer.app_id or "")
    writable = not viewer.read_only  # a read-only token's pages show no write controls
    return render(
        request, template, app=app, viewer=viewer, csrf=viewer.csrf, writable=writable, **context
    )


# ---- entering and leaving ------------------------------------------------------------


@router.get("/")
async def enter(request: Request, error: str | None = None) -> Response:
    return login_page(request, "portal/enter.html", error=error)


@router.post("/session")
async def open_session(request: Request) -> Response:
    return await log_in(request, portal=True)


@router.post("/logout")
async def logout(request: Request, viewer: PortalViewer) -> Response:
    return await log_out(request, viewer, portal=True)


# ---- endpoints -----------------------------------------------------------------------


@router.get("/endpoints")
async def endpoints(request: Request, viewer: PortalViewer, notice: str = "") -> Response:
    store = store_of(request)
    now = store.clock()
    rows = [row | health(row, now) for row in await store.endpoint_health(viewer.app_id or "")]
    return await page(request, viewer, "portal/endpoints.html", endpoints=rows, notice=notice)


def health(ep: dict[str, Any], now: datetime) -> dict[str, Any]:
    """How the page shows an endpoint's breaker: ``circuit`` is closed, open or half-open;
    ``paused_until`` only while a receiver's Retry-After still holds (the column keeps the
    last one after it has passed)."""
    until = ep.get("paused_until")
    return {
        "circuit": Circuit(ep.get("circuit_state") or 0).text,
        "paused_until": until if until is not None and until > now else None,
    }


async def _form_page(
    request: Request, viewer: Viewer, endpoint: dict[str, Any] | None, error: Invalid | None = None
) -> Response:
    catalog = await all_event_types(store_of(request))
    return await page(
        request,
        viewer,
        "portal/endpoint_form.html",
        endpoint=endpoint,
        catalog=catalog,
        headers_text=format_headers(endpoint["headers"]) if endpoint else "",
        **rules_text(endpoint),
        default_max_in_flight=request.app.state.settings.endpoint_max_in_flight,
        error=error.shown(translator(language(request))) if error else "",
        error_field=error.field if error else "",
        status=422 if error else 200,
    )


@router.get("/endpoints/new")
async def new_endpoint(request: Request, viewer: PortalViewer) -> Response:
    return await _form_page(request, viewer, None)


@router.post("/endpoints/new")
async def create_endpoint(request: Request, viewer: PortalViewer) -> Response:
    form = await checked_form(request, viewer, validated=True)
    settings = request.app.state.settings
    try:
        values = endpoint_values(form, require_https=settings.require_https)
    except Invalid as exc:
        return await _form_page(request, viewer, _echo(form), exc)
    problem = await no_room(store_of(request), settings, viewer.app_id or "")
    if problem:
        return await _form_page(request, viewer, _echo(form), Invalid(problem))
    ed25519 = form.get("signature_type") == "ed25519"
    values["secret"] = generate_ed25519_secret() if ed25519 else generate_secret()
    row = await store_of(request).create_endpoint(viewer.app_id or "", values)
    return see_other(f"/portal/endpoints/{row['id']}?notice=created")


def _expiring(ep: dict[str, Any], now: datetime) -> bool:
    """The client certificate expires within the 14 days the warning webhook gives."""
    expires = ep.get("client_cert_expires_at")
    return expires is not None and expires <= now + CERTIFICATE_WARNING


def _echo(form: FormData) -> dict[str, Any]:
    """What was typed, shown again beside the error."""
    return {
        "id": None,
        "url": form.get("url", ""),
        "description": form.get("description", ""),
        "event_types": form.getlist("event_types"),
        "product": form.get("product", "") if form.get("scope") == "one" else None,
        "channels": None,
        "throttle_rate": form.get("rate_limit") or None,
        "max_in_flight": form.get("max_in_flight") or None,
        "headers": {},
        "filter_text": str(form.get("payload_filter") or ""),
        "projection_mode": str(form.get("projection_mode") or "all"),
        "projection_text": str(form.get("projection") or ""),
        "signature_type": str(form.get("signature_type") or ""),
    }


@router.get("/endpoints/{endpoint_id}")
async def endpoint_page(
    request: Request,
    viewer: PortalViewer,
    endpoint_id: str,
    reveal: bool = False,
    event_type: str = "",
    notice: str = "",
) -> Response:
    store, app_id = store_of(request), viewer.app_id or ""
    ep = await store.get_endpoint(app_id, endpoint_id)
    # An ed25519 endpoint shows its public key: receivers verify with it, nobody can sign.
    public_key = public_secret(ep["secret"]) if is_asymmetric(ep["secret"]) else None
    if viewer.read_only:  # read-only means no secrets: the page never holds this one
        ep, reveal = ep | {"secret": None}, False
    stats = await store.endpoint_stats(app_id, ep["id"], None, None)
    _ = translator(language(request))
    chart = charts.horizontal_bars(
        [(_(s.text), stats[s.text], STATUS_COLOURS[s]) for s in MessageStatus],
        _("Deliveries by status"),
    )
    attempts = await store.list_attempts(
        app_id, Page(limit=20, descending=True), endpoint_id=ep["id"]
    )
    catalog = await all_event_types(store)
    chosen = event_type or (ep["event_types"] or [""])[0] or (catalog[0]["name"] if catalog else "")
    example = None
    for et in catalog:
        if et["name"] == chosen:
            try:
                example = example_payload(et)
            except NoSuchExample:
                example = None
    if example is not None and ep["projection"]:
        # Shown as the endpoint will receive it: a test event goes through its projection.
        example = decode_json(project(example, ep["projection"]))
    return await page(
        request,
        viewer,
        "portal/endpoint.html",
        endpoint=ep | health(ep, store.clock()),
        default_max_in_flight=request.app.state.settings.endpoint_max_in_flight,
        reveal=reveal,
        public_key=public_key,
        cert_expiring=_expiring(ep, store.clock()),
        stats=stats,
        chart=chart,
        attempts=attempts.rows,
        catalog=catalog,
        chosen=chosen,
        example=example,
        blocked=await store.blocked_keys(app_id, ep["id"]) if ep["ordered"] else None,
        notice=notice,
        now=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M"),
    )


@router.get("/endpoints/{endpoint_id}/edit")
async def edit_endpoint(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    ep = await store_of(request).get_endpoint(viewer.app_id or "", endpoint_id)
    return await _form_page(request, viewer, ep)


@router.post("/endpoints/{endpoint_id}/edit")
async def save_endpoint(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    form = await checked_form(request, viewer, validated=True)
    store, app_id = store_of(request), viewer.app_id or ""
    ep = await store.get_endpoint(app_id, endpoint_id)
    settings = request.app.state.settings
    try:
        values = endpoint_values(form, require_https=settings.require_https, kept=ep["headers"])
    except Invalid as exc:
        echoed = _echo(form) | {"id": ep["id"]}
        return await _form_page(request, viewer, echoed, exc)
    await store.update_endpoint(app_id, ep["id"], values)
    return see_other(f"/portal/endpoints/{ep['id']}?notice=saved")


@router.post("/endpoints/{endpoint_id}/disable")
async def disable_endpoint(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    return await _toggle(request, viewer, endpoint_id, disabled=True)


@router.post("/endpoints/{endpoint_id}/enable")
async def enable_endpoint(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    return await _toggle(request, viewer, endpoint_id, disabled=False)


async def _toggle(
    request: Request, viewer: Viewer, endpoint_id: str, *, disabled: bool
) -> Response:
    await checked_form(request, viewer)
    store = store_of(request)
    ep = await store.update_endpoint(viewer.app_id or "", endpoint_id, {"disabled": disabled})
    return see_other(f"/portal/endpoints/{ep['id']}?notice={'disabled' if disabled else 'enabled'}")


@router.get("/endpoints/{endpoint_id}/delete")
async def confirm_delete(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    ep = await store_of(request).get_endpoint(viewer.app_id or "", endpoint_id)
    return await page(request, viewer, "portal/confirm_delete.html", endpoint=ep)


@router.post("/endpoints/{endpoint_id}/delete")
async def delete_endpoint(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    await checked_form(request, viewer)
    await store_of(request).delete_endpoint(viewer.app_id or "", endpoint_id)
    return see_other("/portal/endpoints?notice=deleted")


@router.post("/endpoints/{endpoint_id}/rotate")
async def rotate(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    await checked_form(request, viewer)
    grace = request.app.state.settings.rotation_grace
    await rotate_endpoint_secret(store_of(request), viewer.app_id or "", endpoint_id, grace)
    return see_other(f"/portal/endpoints/{endpoint_id}?reveal=1&notice=rotated")


@router.post("/endpoints/{endpoint_id}/test")
async def send_test(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    form = await checked_form(request, viewer)
    try:
        msg = await send_test_event(
            store_of(request), viewer.app_id or "", endpoint_id, form.get("event_type", "")
        )
    except (NoSuchExample, UnknownEventType) as exc:
        raise Invalid(str(exc)) from None
    return see_other(f"/portal/messages/{msg['id']}?notice=sent")


@router.post("/endpoints/{endpoint_id}/recover")
async def recover(request: Request, viewer: PortalViewer, endpoint_id: str) -> Response:
    form = await checked_form(request, viewer)
    try:
        since = datetime.fromisoformat(form.get("since", "")).replace(tzinfo=UTC)
    except ValueError:
        raise Invalid("Enter a date and time.") from None
    store = store_of(request)
    task = await store.start_recover(viewer.app_id or "", endpoint_id, since, None)
    run_in_background(request, store.run_recover(task["id"]))
    return see_other(f"/portal/endpoints/{endpoint_id}?notice=recovering")
