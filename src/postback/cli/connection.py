"""The connection to a server: ``health`` (is it up, does it reach its database) and
``logout`` (end the app-portal token in use)."""

from __future__ import annotations

from postback.cli.client import Api
from postback.cli.common import DEFAULT, JsonOpt, TokenOpt, UrlOpt, api, reported, said


def health(url: UrlOpt = DEFAULT, as_json: JsonOpt = False) -> None:
    """Ask the server whether it is up and reaches its database; exit 1 if not."""
    with reported():
        Api(url, None, timeout=10).get("/api/v1/health")
    said(f"{url} is healthy", {"url": url, "healthy": True}, as_json=as_json)


def logout(url: UrlOpt = DEFAULT, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """End the app-portal token given (--token or POSTBACK_TOKEN) at once.

    Operator tokens are revoked with `postback token revoke`."""
    with reported():
        api(url, token).post("/api/v1/auth/logout")
    said("logged out: the token no longer works", {"loggedOut": True}, as_json=as_json)
