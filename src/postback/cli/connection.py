"""The connection to a server: ``health`` (is it up, does it reach its database) and
``logout`` (end the app-portal token in use)."""

from __future__ import annotations

from postback.cli.client import Api
from postback.cli.common import DEFAULT, Client, JsonOpt, Out, UrlOpt, client_command, reported


# The one client command without --token, so its options are its own (no client_command).
def health(url: UrlOpt = DEFAULT, as_json: JsonOpt = False) -> None:
    """Ask the server whether it is up and reaches its database; exit 1 if not."""
    with reported():
        Api(url, None, timeout=10).get("/api/v1/health")
    Out(as_json).said(f"{url} is healthy", {"url": url, "healthy": True})


@client_command
def logout(*, client: Client, out: Out) -> None:
    """End the app-portal token given (--token or POSTBACK_TOKEN) at once.

    Operator tokens are revoked with `postback token revoke`."""
    client.post("/api/v1/auth/logout")
    out.said("logged out: the token no longer works", {"loggedOut": True})
