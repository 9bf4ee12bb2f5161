"""The web UI: the customer's app portal (/portal/) and the operator's dashboard
(/dashboard/), server-rendered, in English, Spanish and Brazilian Portuguese."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from postback.config import Settings
from postback.web.embedding import set_cookie
from postback.web.i18n import LANGUAGES
from postback.web.render import WebRoute, see_other
from postback.web.session import LANG_COOKIE
from postback.web.throughput import Throughput

STATIC = Path(__file__).parent / "static"

common = APIRouter(route_class=WebRoute, include_in_schema=False)


@common.get("/ui/lang/{code}")
async def choose_language(request: Request, code: str, next: str = "/portal/") -> Response:
    """Remember the language chosen in the switcher, then go back to the page (framable:
    the switcher works in an embedded portal too)."""
    # Only paths on this site: anything else could make this an open redirect.
    local = next.startswith("/") and not next.startswith("//") and "\\" not in next
    response = see_other(next if local else "/")
    if code in dict(LANGUAGES):
        set_cookie(
            response,
            request,
            LANG_COOKIE,
            code,
            path="/",
            max_age=365 * 86400,
            samesite="lax",
            framable=True,
        )
    return response


@common.get("/")
async def root(request: Request) -> Response:
    return see_other("/dashboard/")


@common.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask for /favicon.ico on pages that name no icon (the API's JSON, /docs)."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the portal, the dashboard and their static files to the API's app."""
    from postback.web import dashboard, portal, portal_messages, portal_ordering

    app.state.web_charts = Throughput()  # the dashboard's attempt counts, kept up to date
    app.include_router(common)
    app.include_router(portal.router)
    app.include_router(portal_messages.router)
    app.include_router(portal_ordering.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
