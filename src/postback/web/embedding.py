"""The portal inside another site's page (svix-react's ``<AppPortal>``): the look its link
asks for, and the cookies a framed portal needs.

``<AppPortal>`` appends ``darkMode``, ``primaryColor``, ``fontFamily`` and ``icon`` to the
portal link's query. Each value is checked against a strict pattern and dropped when it
does not match, so nothing the query carries reaches a page's CSS or HTML unchecked. The
look is kept in a cookie for the rest of the session: the portal's own links carry no
query. A link that opens the portal afresh replaces it.

A portal framed by a site of another registrable domain is a third-party context: there a
browser sends no ``SameSite=Strict`` cookie, so the portal's session would never arrive.
When embedding origins are configured, the portal's cookies are ``SameSite=None; Secure;
Partitioned`` instead (kept apart per embedding site, which browsers that block
third-party cookies still allow). ``Secure`` needs https, or a loopback host, which
browsers treat as secure; over plain http elsewhere the cookies stay as they were."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from fastapi import Request, Response

from postback.config import Settings

THEME_COOKIE = "pb_theme"
THEME_PARAMS = ("darkMode", "primaryColor", "fontFamily", "icon")
ENTRY_PATH = "/portal/"

_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
# Font family names unquoted, as CSS allows: words that are CSS identifiers, separated by
# single spaces, the names by commas. No quotes, semicolons, parentheses or escapes.
_WORD = r"[A-Za-z_][A-Za-z0-9_-]*"
_FAMILY = rf"{_WORD}(?: {_WORD})*"
_FONT = re.compile(rf"^{_FAMILY}(?: *, *{_FAMILY})*$")
_DNS_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
# What an icon URL may hold: RFC 3986's characters, nothing else (no spaces, quotes, <>).
_URL_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
MAX_FONT = 200
MAX_ICON = 2048
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_MODES: dict[str, Literal["dark", "auto"]] = {"true": "dark", "auto": "auto"}


@dataclass(frozen=True)
class Theme:
    """The portal's look. ``mode``: "dark", "auto" (the reader's prefers-color-scheme) or
    None (light); ``primary``: "#rrggbb"; ``font``: a font-family list; ``icon``: an https
    URL shown beside the application's name."""

    mode: Literal["dark", "auto"] | None = None
    primary: str | None = None
    font: str | None = None
    icon: str | None = None

    @property
    def css(self) -> str:
        """The page's own rules, written from checked values only (empty: none)."""
        rules = []
        if self.primary:  # html:root outweighs portal-theme.css's dark colours
            accent = f"--accent:{self.primary};--accent-fg:{_text_on(self.primary)}"
            rules.append(f"html:root{{{accent}}}")
        if self.font:
            rules.append(f"body{{font-family:{self.font},system-ui,sans-serif}}")
        return "".join(rules)

    @property
    def icon_origin(self) -> str | None:
        if not self.icon:
            return None
        parts = urlsplit(self.icon)
        port = f":{parts.port}" if parts.port not in (None, 443) else ""
        return f"https://{parts.hostname}{port}"

    def params(self) -> dict[str, str]:
        """The theme as the query parameters it was read from."""
        values = {
            "darkMode": {"dark": "true", "auto": "auto"}.get(self.mode or ""),
            "primaryColor": self.primary,
            "fontFamily": self.font,
            "icon": self.icon,
        }
        return {k: v for k, v in values.items() if v}


def read_theme(params: Mapping[str, str]) -> Theme:
    """The theme a query (or the cookie) asks for; every value that fails its check is
    dropped on its own."""
    mode = _MODES.get(params.get("darkMode", "").strip().lower())
    colour = params.get("primaryColor", "").strip()
    primary = _hex(colour) if _HEX.match(colour) else None
    font = " ".join(params.get("fontFamily", "").split(" ")).strip()
    icon = params.get("icon", "").strip()
    return Theme(
        mode=mode,
        primary=primary,
        font=font if len(font) <= MAX_FONT and _FONT.match(font) else None,
        icon=icon if _is_icon(icon) else None,
    )


def _hex(colour: str) -> str:
    digits = colour.lstrip("#").lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return f"#{digits}"


def _text_on(colour: str) -> str:
    """White or near-black, whichever reads better on ``colour`` (WCAG relative luminance)."""

    def channel(i: int) -> float:
        c = int(colour[i : i + 2], 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    return "#1a202c" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#fff"


def _is_icon(url: str) -> bool:
    if not url or len(url) > MAX_ICON or not _URL_CHARS.match(url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        return False
    host = parts.hostname or ""
    return (
        parts.scheme == "https"
        and "@" not in parts.netloc
        and bool(_DNS_HOST.match(host))
        and parts.netloc.lower().rstrip(":").split(":")[0] == host
    )


def theme_of(request: Request) -> tuple[Theme, bool]:
    """The page's theme, and whether the request sets it anew: a query naming any of the
    four parameters, or the entry page of a portal link (which starts with its own look)."""
    query = request.query_params
    fresh = any(p in query for p in THEME_PARAMS) or (
        request.url.path == ENTRY_PATH and "error" not in query
    )
    if fresh:
        return read_theme(query), True
    kept = request.cookies.get(THEME_COOKIE, "")
    return read_theme(dict(parse_qsl(unquote(kept)))), False


def keep_theme(request: Request, response: Response, theme: Theme) -> None:
    """Remember the theme for the session's next pages (or forget it when it is empty)."""
    params = theme.params()
    value = quote(urlencode(params), safe="")
    # No max-age: the look lasts as long as the browser's session (0 forgets it).
    set_cookie(
        response,
        request,
        THEME_COOKIE,
        value,
        path="/portal",
        max_age=None if params else 0,
        framable=True,
    )


def embeds(settings: Settings) -> bool:
    return bool(settings.embed_origin_list)


def _secure_context(request: Request, settings: Settings) -> bool:
    """Would a browser keep a Secure cookie from this response? https, or a loopback host."""
    public = settings.public_url or ""
    return (
        request.url.scheme == "https"
        or public.startswith("https://")
        or (request.url.hostname or "") in _LOOPBACK
    )


def set_cookie(
    response: Response,
    request: Request,
    key: str,
    value: str,
    *,
    path: str,
    max_age: int | None,
    samesite: Literal["strict", "lax"] = "strict",
    framable: bool = False,
) -> None:
    """Set (or, with ``max_age=0``, delete) an HttpOnly cookie of the web UI. A ``framable``
    one, when the portal may be framed, must reach it in a third-party frame: SameSite=None,
    Secure and Partitioned (a partitioned cookie is deleted only by a Set-Cookie that says
    so too). Behind a TLS-terminating proxy the request itself may arrive over plain http:
    POSTBACK_PUBLIC_URL tells."""
    settings: Settings = request.app.state.settings
    secure = request.url.scheme == "https" or (settings.public_url or "").startswith("https://")
    framed = framable and embeds(settings) and _secure_context(request, settings)
    response.set_cookie(
        key,
        value,
        path=path,
        max_age=max_age,
        httponly=True,
        samesite="none" if framed else samesite,
        secure=secure or framed,
    )
    if framed:  # starlette writes Partitioned only on Python 3.14
        name, header = response.raw_headers[-1]
        response.raw_headers[-1] = (name, header + b"; Partitioned")
