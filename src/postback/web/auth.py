"""Who is looking at a page: a portal session (one application) or a dashboard session
(the operator). Both are server-side sessions (see session.py) named by a cookie."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response
from starlette.datastructures import FormData

from postback.store.sessions import WebSession
from postback.store.store import Store
from postback.store.tokens import Principal
from postback.web.embedding import set_cookie
from postback.web.render import Forbidden, Invalid, LoginRequired, render, see_other
from postback.web.session import (
    DASHBOARD_COOKIE,
    LOGIN_CSRF_COOKIE,
    PORTAL_COOKIE,
    PORTAL_LOGIN_CSRF_COOKIE,
    SESSION_SECONDS,
    same,
)
from postback.web.validation import NUL_MESSAGE

PORTAL_PATH = "/portal"
DASHBOARD_PATH = "/dashboard"


@dataclass(frozen=True)
class Viewer:
    """An authenticated session: ``app_id`` is None for the operator."""

    session: WebSession
    app_id: str | None
    read_only: bool

    @property
    def csrf(self) -> str:
        return self.session.csrf


def _store(request: Request) -> Store:
    return request.app.state.store


async def portal_viewer(request: Request) -> Viewer:
    session = await _store(request).web_session(request.cookies.get(PORTAL_COOKIE))
    if session is None or session.principal.app_id is None:
        raise LoginRequired(f"{PORTAL_PATH}/?error=expired")
    principal = session.principal
    return Viewer(session=session, app_id=principal.app_id, read_only=principal.read_only)


async def dashboard_viewer(request: Request) -> Viewer:
    session = await _store(request).web_session(request.cookies.get(DASHBOARD_COOKIE))
    if session is None or not session.principal.is_operator:
        raise LoginRequired(f"{DASHBOARD_PATH}/login")
    return Viewer(session=session, app_id=None, read_only=False)


MAX_FORM_BYTES = 1024 * 1024


async def read_form(request: Request, *, validated: bool = False) -> FormData:
    """A URL-encoded form (every form here is one). Parsed by hand: starlette's parser
    needs python-multipart, a dependency for file uploads we never take.

    No database stores NUL in text: a form with one is refused here with a clear message,
    unless the handler says it checks every value it keeps through the API's models
    (``validated``), which refuse NUL too and show it in the form."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Forbidden()
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=2000)
    except (UnicodeDecodeError, ValueError):
        raise Forbidden() from None
    if not validated and any("\x00" in k or "\x00" in v for k, v in pairs):
        raise Invalid(NUL_MESSAGE)
    return FormData(pairs)


async def checked_form(
    request: Request, viewer: Viewer, *, writes: bool = True, validated: bool = False
) -> FormData:
    """The posted form, once its CSRF token matches the session's; a read-only portal
    token may post nothing that ``writes``."""
    form = await read_form(request, validated=validated)
    if not same(viewer.csrf, str(form.get("csrf") or "")) or (writes and viewer.read_only):
        raise Forbidden()
    return form


async def start_session(
    request: Request, response: Response, principal: Principal, *, portal: bool
) -> None:
    name, path = (PORTAL_COOKIE, PORTAL_PATH) if portal else (DASHBOARD_COOKIE, DASHBOARD_PATH)
    session = await _store(request).open_web_session(principal, SESSION_SECONDS)
    set_cookie(
        response, request, name, session.id, path=path, max_age=SESSION_SECONDS, framable=portal
    )


def end_session(request: Request, response: Response, *, portal: bool) -> None:
    name, path = (PORTAL_COOKIE, PORTAL_PATH) if portal else (DASHBOARD_COOKIE, DASHBOARD_PATH)
    set_cookie(response, request, name, "", path=path, max_age=0, framable=portal)


def _login_csrf_cookie(request: Request) -> tuple[str, str, bool]:
    """(name, path, framable) of the login form's double-submit cookie: the portal's has its
    own, which a framed portal needs to be a third-party cookie (embedding.py)."""
    if request.url.path.startswith(f"{PORTAL_PATH}/"):
        return PORTAL_LOGIN_CSRF_COOKIE, PORTAL_PATH, True
    return LOGIN_CSRF_COOKIE, "/", False


def login_page(request: Request, template: str, **context: Any) -> Response:
    """A login form. Its CSRF value also goes into a cookie (double submit): there is no
    session yet to tie it to."""
    name, path, framable = _login_csrf_cookie(request)
    csrf = request.cookies.get(name) or secrets.token_urlsafe(24)
    response = render(request, template, csrf=csrf, **context)
    set_cookie(response, request, name, csrf, path=path, max_age=None, framable=framable)
    return response


async def checked_login(request: Request) -> FormData:
    form = await read_form(request)
    name, _, _ = _login_csrf_cookie(request)
    if not same(request.cookies.get(name), str(form.get("csrf") or "")):
        raise Forbidden()
    return form


# Where each side sends the browser: (after login, after a refused login, after logout).
_PORTAL_WAYS = ("/portal/endpoints", "/portal/?error=invalid", "/portal/?error=logged-out")
_DASHBOARD_WAYS = ("/dashboard/", "/dashboard/login?error=invalid", "/dashboard/login")


def is_portal_page(path: str) -> bool:
    """A page of the portal on this site, safe to send a browser to after login."""
    return path.startswith(f"{PORTAL_PATH}/") and "//" not in path and "\\" not in path


async def log_in(request: Request, *, portal: bool) -> Response:
    """Open a session with the token a login form posted: an application's token for the
    portal, an operator token for the dashboard."""
    done, refused, _ = _PORTAL_WAYS if portal else _DASHBOARD_WAYS
    form = await checked_login(request)
    wanted = str(form.get("next") or "")
    if portal and is_portal_page(wanted):
        done = wanted
    token = str(form.get("token") or "").strip()
    principal = await _store(request).authenticate(token) if token else None
    if principal is None or principal.is_operator == portal:
        return see_other(refused)
    response = see_other(done)
    await start_session(request, response, principal, portal=portal)
    return response


async def log_out(request: Request, viewer: Viewer, *, portal: bool) -> Response:
    """End the session. A portal token ends with it, as the API's logout does (its link
    stops working); an operator token is the operator's API key and stays."""
    await checked_form(request, viewer, writes=False)
    await _store(request).end_web_session(viewer.session.id, revoke_app_token=portal)
    response = see_other((_PORTAL_WAYS if portal else _DASHBOARD_WAYS)[2])
    end_session(request, response, portal=portal)
    return response
