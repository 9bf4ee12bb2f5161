"""A small client for postback's HTTP API, used by the client commands. The standard
library's urllib is enough for one request at a time and keeps the CLI free of another
dependency."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """The server answered with an error, or could not be reached (``status`` 0)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def error_detail(body: bytes) -> str:
    """The message inside our error shape: ``{"detail": "..."}``, or a 422's list of
    ``{"loc": [...], "msg": "..."}`` made readable."""
    try:
        detail = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip()[:500] or "no detail"
    if isinstance(detail, list):
        parts = []
        for item in detail:
            loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
            parts.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
        return "; ".join(parts)
    return str(detail)


class Api:
    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        self.base = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        raw_body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One call; returns the decoded JSON (None for an empty answer). ``raw_body`` is
        sent as is (JSON bytes already encoded, so a payload is sent exactly as given);
        ``headers`` are added to the request's own."""
        url = self.base + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = raw_body if raw_body is not None else None
        if data is None and body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("accept", "application/json")
        if data is not None:
            request.add_header("content-type", "application/json")
        if self.token:
            request.add_header("authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, error_detail(exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, f"cannot reach {self.base}: {reason}") from None
        return json.loads(payload) if payload else None

    def events(self, path: str, **params: Any) -> Iterator[tuple[str, str]]:
        """A Server-Sent Events stream as ``(id, data)`` pairs, for as long as the server
        keeps it open (comments and keep-alives are skipped)."""
        query = {k: v for k, v in params.items() if v is not None}
        url = self.base + path + ("?" + urllib.parse.urlencode(query, doseq=True) if query else "")
        request = urllib.request.Request(url, method="GET")
        request.add_header("accept", "text/event-stream")
        if self.token:
            request.add_header("authorization", f"Bearer {self.token}")
        try:
            # No read timeout: a quiet feed sends a keep-alive now and then, nothing more.
            response = urllib.request.urlopen(request, timeout=None)
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, error_detail(exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, f"cannot reach {self.base}: {reason}") from None
        with response:
            event_id, data = "", []
            for raw in response:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if data:
                        yield event_id, "\n".join(data)
                    event_id, data = "", []
                elif line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", path, body, params=params)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def pages(self, path: str, *, limit: int, **params: Any) -> Iterator[dict]:
        """Items of a listing, following ``iterator`` until ``limit`` items or the end."""
        iterator = None
        seen = 0
        while seen < limit:
            page = self.get(path, limit=min(250, limit - seen), iterator=iterator, **params)
            for item in page["data"]:
                yield item
                seen += 1
            iterator = page.get("iterator")
            if page.get("done", True) or not iterator or not page["data"]:
                return


def quote(ref: str) -> str:
    """An id, uid or event-type name as one path segment."""
    return urllib.parse.quote(ref, safe="")
