"""The operator dashboard: the whole platform at a glance, event types, and a way into
any application's portal."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request, Response

from postback import reasons
from postback.api.wire.event_types import EventTypeBase, EventTypeIn
from postback.delivery.scheduler import Circuit
from postback.store.operational import ENDPOINT_DISABLED
from postback.store.pages import Page
from postback.store.store import Store
from postback.web import charts, describe
from postback.web.auth import (
    Viewer,
    checked_form,
    dashboard_viewer,
    is_portal_page,
    log_in,
    log_out,
    login_page,
)
from postback.web.i18n import DEFAULT, LANGUAGES, translator
from postback.web.render import Invalid, WebRoute, language, render, see_other
from postback.web.validation import validated

router = APIRouter(prefix="/dashboard", route_class=WebRoute, include_in_schema=False)
DashboardViewer = Annotated[Viewer, Depends(dashboard_viewer)]
# A due delivery this late counts as overdue (the figure `postback check` uses by default).
OVERDUE_AFTER = 60.0
# A transaction writing messages open this long holds the events feed back (as in check).
FEED_HELD_AFTER = 5.0
# An operator looking into a customer's portal gets a token for an hour, not a week.
OPERATOR_PORTAL_TTL = 3600.0
# What the event-type form sets; archiving has its own buttons.
EVENT_TYPE_FIELDS = {
    "name",
    "description",
    "descriptions",
    "schemas",
    "product_path",
    "ordering_key_path",
}
# The form writes the description in the portal's other languages; other tags are kept.
TRANSLATED = [code for code, _ in LANGUAGES if code != DEFAULT]


def _store(request: Request) -> Store:
    return request.app.state.store


def _page(request: Request, viewer: Viewer, template: str, **context: Any) -> Response:
    return render(request, template, viewer=viewer, csrf=viewer.csrf, **context)


@router.get("/login")
async def show_login(request: Request, error: str = "") -> Response:
    return login_page(request, "dashboard/login.html", error=error)


@router.post("/login")
async def login(request: Request) -> Response:
    return await log_in(request, portal=False)


@router.post("/logout")
async def logout(request: Request, viewer: DashboardViewer) -> Response:
    return await log_out(request, viewer, portal=False)


@router.get("/")
async def home(request: Request, viewer: DashboardViewer) -> Response:
    store = _store(request)
    _ = translator(language(request))
    # One snapshot for both charts: the hour's count can never pass the day's.
    snapshot = await request.app.state.web_charts.refresh(store.attempt_counts, store.clock())
    request.app.state.web_charts = snapshot
    chart_svgs = {}
    rates = {}
    for name, bars in (("hour", snapshot.hour()), ("day", snapshot.day())):
        title = _("Attempts in the last hour") if name == "hour" else _("Attempts in the last day")
        chart_svgs[name] = charts.stacked_bars(bars, title)
        ok, total = sum(b.good for b in bars), sum(b.good + b.bad for b in bars)
        rates[name] = {"total": total, "rate": round(100 * ok / total, 1) if total else None}
    return _page(
        request,
        viewer,
        "dashboard/home.html",
        queue=await _queue(store),
        feed=await store.feed_health(FEED_HELD_AFTER),
        charts=chart_svgs,
        rates=rates,
        apps=await store.apps_overview(),
        disabled=await store.disabled_endpoints(),
        **await _operational(store, _, language(request)),
        circuits=[
            row | {"circuit": Circuit(row["circuit_state"]).text}
            for row in await store.open_circuits()
        ],
        retention=await _retention(store),
        ordering=_blocked(await store.blocked_too_long()),
    )


def _blocked(found: dict[str, Any] | None) -> dict[str, Any] | None:
    """The last pass of the blocked-keys alert (store/blocked.py), as kept in its
    housekeeping row: a view of the dashboard reads that row, never the queue."""
    if found is None or not found.get("checked_at"):
        return None
    return {
        "checked_at": _parsed(found["checked_at"]),
        "blocked": [b | {"since": _parsed(b["blocked_since"])} for b in found["blocked"]],
    }


async def _retention(store: Store) -> dict[str, Any] | None:
    """The last retention pass and the tables' figures it took (store/retention.py): read
    from one row, so a view of the dashboard never counts or sizes a table itself."""
    status = await store.retention_status()
    if status is None:
        return None
    tables = [
        f | {"oldest": _parsed(f["oldest"]), "size": _size(f["bytes"])}
        for f in status.get("storage") or []
    ]
    return status | {"storage": tables, "finished": _parsed(status.get("finished_at"))}


def _parsed(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _size(count: int | None) -> str:
    if count is None:
        return "—"
    size, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"


async def _operational(store: Store, _: Any, lang: str) -> dict[str, Any]:
    """The operator's own webhooks: where they go, and the latest ones, each worded."""
    endpoints, events = await store.operational_overview()
    for event in events:
        data = event["data"]
        if event["event_type"] == ENDPOINT_DISABLED and data.get("reason"):
            event["details"] = describe.disabled_text(reasons.stored(data["reason"]), _, lang)
        elif event["event_type"] == ENDPOINT_DISABLED:
            event["details"] = _("Disabled by request.")
        elif "orderingKey" in data:
            key = data["orderingKey"] or _("(no key)")
            event["details"] = f"{_('Ordering key')}: {key} · {data.get('msgId')}"
        elif "failures" in data:
            event["details"] = _("Failures in a row") + f": {data['failures']}"
        else:
            event["details"] = ""
    return {"ops_endpoints": endpoints, "ops_events": events}


async def _queue(store: Store) -> dict[str, Any]:
    """The queue's gauges, read from the queue's partial index only (as /metrics does): a view of
    the dashboard never scans finished deliveries, however many there are."""
    gauges = await store.queue_gauges()
    late = gauges["oldest_due_seconds"] > OVERDUE_AFTER
    return gauges | {"healthy": not late and gauges["stuck"] == 0}


@router.get("/search")
async def search(request: Request, viewer: DashboardViewer, q: str = "") -> Response:
    q = q.strip()[:256]
    found = await _store(request).find_messages(q) if q else []
    return _page(request, viewer, "dashboard/search.html", q=q, found=found)


@router.post("/apps/{app_id}/portal")
async def open_portal(request: Request, viewer: DashboardViewer, app_id: str) -> Response:
    """A fresh portal token for the application, and the browser sent to its link (and
    on to one of its pages, ``next``, such as a message found by the search)."""
    form = await checked_form(request, viewer)
    store = _store(request)
    settings = request.app.state.settings
    app = await store.get_app(app_id)
    token, _ = await store.create_app_token(app["id"], OPERATOR_PORTAL_TTL)
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    link = f"{base}/portal/#token={token}"
    page = str(form.get("next") or "")
    if is_portal_page(page):
        link += "&" + urlencode({"next": page})
    return see_other(link)


# ---- event types ---------------------------------------------------------------------


@router.get("/event-types")
async def event_types(request: Request, viewer: DashboardViewer, notice: str = "") -> Response:
    rows = (await _store(request).list_event_types(Page(limit=250), include_archived=True)).rows
    return _page(request, viewer, "dashboard/event_types.html", event_types=rows, notice=notice)


def _form_view(row: dict[str, Any] | None) -> dict[str, str]:
    """An event type as its form shows it: the latest schema and its examples as JSON."""
    if row is None:
        empty = ("name", "description", "schema", "examples", "product_path", "ordering_key_path")
        return dict.fromkeys(empty, "")
    translations = row.get("descriptions") or {}
    schemas = row.get("schemas") or {}
    version = max(schemas, key=lambda v: (v.isdigit(), int(v) if v.isdigit() else 0), default="")
    schema = dict(schemas.get(version) or {})
    examples = schema.pop("examples", None)
    dump = lambda v: orjson.dumps(v, option=orjson.OPT_INDENT_2).decode() if v else ""  # noqa: E731
    return {
        "name": row["name"],
        "description": row.get("description") or "",
        **{f"description:{code}": translations.get(code, "") for code in TRANSLATED},
        "schema": dump(schema),
        "examples": dump(examples),
        "product_path": row.get("product_path") or "",
        "ordering_key_path": row.get("ordering_key_path") or "",
    }


def _descriptions(form: dict[str, str], kept: dict[str, str] | None) -> dict[str, str] | None:
    """The translations typed in the form (an empty box removes one), over those in
    languages the form does not show."""
    out = {tag: text for tag, text in (kept or {}).items() if tag not in TRANSLATED}
    for code in TRANSLATED:
        text = form.get(f"description:{code}", "").strip()
        if text:
            out[code] = text
    return out or None


def _parse_json(text: str, what: str) -> Any:
    if not text.strip():
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Invalid(what) from None


def _schemas(form: dict[str, str]) -> dict[str, Any] | None:
    schema = _parse_json(form.get("schema", ""), "The schema is not valid JSON.")
    examples = _parse_json(form.get("examples", ""), "The examples are not valid JSON.")
    if schema is not None and not isinstance(schema, dict):
        raise Invalid("The schema must be a JSON object.")
    if examples is not None and not isinstance(examples, list):
        examples = [examples]  # one example written alone
    if schema is None and examples is None:
        return None
    return {"1": (schema or {}) | ({"examples": examples} if examples else {})}


def _form_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, str],
    editing: bool,
    error: Invalid | None = None,
) -> Response:
    message = error.shown(translator(language(request))) if error else ""
    return _page(
        request,
        viewer,
        "dashboard/event_type_form.html",
        status=422 if error else 200,
        values=values,
        editing=editing,
        error=message,
    )


@router.get("/event-types/new")
async def new_event_type(request: Request, viewer: DashboardViewer) -> Response:
    return _form_page(request, viewer, _form_view(None), editing=False)


@router.post("/event-types/new")
async def create_event_type(request: Request, viewer: DashboardViewer) -> Response:
    form = dict((await checked_form(request, viewer, validated=True)).items())
    try:
        wire = {
            "name": form.get("name", "").strip(),
            "description": form.get("description", "").strip(),
            "descriptions": _descriptions(form, None),
            "schemas": _schemas(form),
            "productPath": form.get("product_path", "").strip() or None,
            "orderingKeyPath": form.get("ordering_key_path", "").strip() or None,
        }
        values = validated(EventTypeIn, wire).model_dump(include=EVENT_TYPE_FIELDS)
    except Invalid as exc:
        return _form_page(request, viewer, form, editing=False, error=exc)
    await _store(request).create_event_type(values)
    request.app.state.schemas.invalidate()  # as the API does: payload checks see it at once
    return see_other("/dashboard/event-types?notice=created")


@router.get("/event-types/{name}")
async def edit_event_type(request: Request, viewer: DashboardViewer, name: str) -> Response:
    row = await _store(request).get_event_type(name)
    return _form_page(request, viewer, _form_view(row), editing=True)


@router.post("/event-types/{name}")
async def save_event_type(request: Request, viewer: DashboardViewer, name: str) -> Response:
    form = dict((await checked_form(request, viewer, validated=True)).items())
    store = _store(request)
    row = await store.get_event_type(name)
    try:
        wire = {
            "description": form.get("description", "").strip(),
            "descriptions": _descriptions(form, row.get("descriptions")),
            "schemas": _schemas(form),
            "productPath": form.get("product_path", "").strip() or None,
            "orderingKeyPath": form.get("ordering_key_path", "").strip() or None,
        }
        values = validated(EventTypeBase, wire).model_dump(include=EVENT_TYPE_FIELDS)
    except Invalid as exc:
        return _form_page(request, viewer, form | {"name": name}, editing=True, error=exc)
    await store.update_event_type(name, values)
    request.app.state.schemas.invalidate()
    return see_other("/dashboard/event-types?notice=saved")


@router.post("/event-types/{name}/archive")
async def archive_event_type(request: Request, viewer: DashboardViewer, name: str) -> Response:
    return await _set_archived(request, viewer, name, archived=True)


@router.post("/event-types/{name}/restore")
async def restore_event_type(request: Request, viewer: DashboardViewer, name: str) -> Response:
    return await _set_archived(request, viewer, name, archived=False)


async def _set_archived(request: Request, viewer: Viewer, name: str, *, archived: bool) -> Response:
    await checked_form(request, viewer)
    await _store(request).update_event_type(name, {"archived": archived})
    request.app.state.schemas.invalidate()
    return see_other(f"/dashboard/event-types?notice={'archived' if archived else 'restored'}")
