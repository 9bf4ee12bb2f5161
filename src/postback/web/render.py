"""Rendering pages: the Jinja2 environment, the language of a request, and a route class
that turns the web's own exceptions into pages instead of the API's JSON errors."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from postback.api.masking import shown_url
from postback.store.errors import Conflict, NotFound
from postback.web import describe
from postback.web.embedding import Theme, keep_theme, theme_of
from postback.web.i18n import LANGUAGES, pick_language, translator
from postback.web.i18n_catalog import in_language
from postback.web.session import LANG_COOKIE

TEMPLATES = Path(__file__).parent / "templates"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


env.filters["when"] = _when
# {{ event_type|described(lang) }}: its description in the reader's language, if written.
env.filters["described"] = lambda et, lang: in_language(
    et.get("description") or "", et.get("descriptions"), lang
)
# What an endpoint gets and why it stopped, in the reader's words (web/describe.py).
env.globals.update(
    disabled_text=describe.disabled_text,
    not_sent_text=describe.not_sent_text,
    endpoint_summary=describe.endpoint_summary,
    product_text=describe.product_text,
    local_date=describe.local_date,
)
env.filters["pretty"] = _pretty
# {{ url|shown_url(not writable) }}: a read-only viewer sees no userinfo credentials.
env.filters["shown_url"] = lambda url, read_only: shown_url(url or "", read_only=read_only)


# Pages hold secrets and one-click actions: never cached, never framed, and scripts only
# from our own static files.
PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def portal_headers(
    frame_origins: tuple[str, ...], theme: Theme, nonce: str | None
) -> dict[str, str]:
    """A portal page's headers: framed only by the embedding origins (POSTBACK_EMBED_ORIGINS),
    its theme's style by nonce and its icon from the icon's origin. X-Frame-Options cannot
    name origins, so a framable page leaves it out (frame-ancestors decides, in every
    browser that knows CSP level 2)."""
    images = " ".join(["'self'", "data:", *([theme.icon_origin] if theme.icon_origin else [])])
    ancestors = " ".join(frame_origins) or "'none'"
    policy = [
        "default-src 'self'",
        f"img-src {images}",
        f"frame-ancestors {ancestors}",
        "base-uri 'none'",
    ]
    if nonce:
        policy.insert(1, f"style-src 'self' 'nonce-{nonce}'")
    headers = PAGE_HEADERS | {"content-security-policy": "; ".join(policy)}
    if frame_origins:
        del headers["x-frame-options"]
    return headers


class LoginRequired(Exception):
    """No valid session: send the browser to ``location`` (a login or error page)."""

    def __init__(self, location: str) -> None:
        self.location = location


class Forbidden(Exception):
    """A form without a valid CSRF token, or a write with a read-only token."""


class Invalid(Exception):
    """A form value we cannot accept; the page is shown again with the message."""

    def __init__(self, message: str, detail: str = "", field: str = "") -> None:
        self.message = message
        self.detail = detail  # technical, shown as is after the translated message
        self.field = field  # the wire name of the field at fault, when one is

    def shown(self, translate: Callable[[str], str]) -> str:
        return f"{translate(self.message)} {self.detail}".strip()


def language(request: Request) -> str:
    return pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    # The portal may be themed and framed (embedding.py); the dashboard never is.
    portal = request.url.path.startswith("/portal/")
    theme, fresh = theme_of(request) if portal else (Theme(), False)
    frame_origins = request.app.state.settings.embed_origin_list if portal else ()
    nonce = secrets.token_urlsafe(16) if theme.css else None
    page = env.get_template(template).render(
        request=request,
        lang=lang,
        languages=LANGUAGES,
        here=quote(here, safe=""),
        _=translator(lang),
        theme=theme,
        style_nonce=nonce,
        frame_origins=" ".join(frame_origins),
        **context,
    )
    headers = portal_headers(frame_origins, theme, nonce) if portal else PAGE_HEADERS
    response = HTMLResponse(page, status_code=status, headers=headers)
    if fresh:
        keep_theme(request, response, theme)
    return response


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _problem(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, status_code=status, message=message)


class WebRoute(APIRoute):
    """Pages answer with pages: a missing row is a 404 page, a bad form a 403 or 422 page,
    and a lost session a redirect to the login."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return see_other(exc.location)
            except NotFound:
                return _problem(request, 404, "Not found.")
            except Forbidden:
                return _problem(request, 403, "This form has expired or was not sent by us.")
            except Conflict as exc:
                return _problem(request, 409, str(exc))
            except Invalid as exc:
                return _problem(request, 422, exc.message)

        return handle
