"""Endpoint URLs as a read-only viewer sees them.

Userinfo in a URL (``https://user:pass@host/…``) is a credential for the receiver. A
read-only portal token may look but must not learn credentials, so its responses and pages
show the URL with the userinfo replaced. The flag lives in a context variable that the
authentication dependency sets on every request, either way: a request's task copies the
context it was started from, which asyncio may have carried over from an earlier request on
the same connection, so a flag set only when true could outlive its request."""

from __future__ import annotations

import contextvars

HIDDEN = "***"
_read_only = contextvars.ContextVar("postback_read_only_viewer", default=False)


def hide_userinfo(url: str) -> str:
    """``url`` with any userinfo replaced by ``***``. Plain string work: it must never fail,
    whatever was stored."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" not in authority:
        return url
    return f"{scheme}://{HIDDEN}@{authority.rpartition('@')[2]}{tail}"


def viewing(*, read_only: bool) -> None:
    """Say whether the current request is made by a read-only viewer."""
    _read_only.set(read_only)


def shown_url(url: str, *, read_only: bool | None = None) -> str:
    """The URL as the current viewer (or one that is ``read_only``) may see it."""
    hide = _read_only.get() if read_only is None else read_only
    return hide_userinfo(url) if hide and url else url
