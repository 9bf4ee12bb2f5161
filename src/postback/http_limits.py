"""Limits on what a client may send before its request reaches the app: the size and count
of its header fields and the time it takes to send them.

uvicorn's httptools parser accepts headers of any size and number (an 8 MB header, 20,000
headers) and waits for them as long as the client trickles bytes. This protocol is
uvicorn's own with three checks added: at most ``max_header_bytes`` for the request line
and headers, at most ``max_header_count`` fields (both answered 431, then closed), and at
most ``header_timeout`` seconds from a request's first byte (or from connecting) to the end
of its headers (answered 408, then closed). Idle keep-alive connections are uvicorn's
``timeout_keep_alive``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from postback.config import Settings


@dataclass(frozen=True)
class HeaderLimits:
    max_header_bytes: int
    max_header_count: int
    header_timeout: float


TOO_LARGE = b"431 Request Header Fields Too Large"


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the parser turns it into an error."""


def _response(status: bytes, text: str) -> bytes:
    body = text.encode()
    return b"".join(
        [
            b"HTTP/1.1 " + status + b"\r\n",
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


def limited_protocol(limits: HeaderLimits) -> type[asyncio.Protocol] | str:
    """The HTTP protocol class for uvicorn's ``http`` option. Without httptools, uvicorn
    falls back to h11, which bounds the header size itself (``h11_max_incomplete_event_size``)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        return "h11"

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        head_limits: ClassVar[HeaderLimits] = limits

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._reading_head = True
            self._head_bytes = 0
            self._head_count = 0
            self._refusal: bytes | None = None
            self._head_timer: asyncio.TimerHandle | None = None
            super().connection_made(transport)
            self._start_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._reading_head:
                self._head_bytes += len(data)
            super().data_received(data)
            # Checked after parsing: the same read may end the headers and begin the body.
            over = self._head_bytes > self.head_limits.max_header_bytes
            if self._reading_head and over and not self.transport.is_closing():
                self._refuse(_response(TOO_LARGE, "headers too large"))

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_count = 0
            self._start_head_timer()

        def on_header(self, name: bytes, value: bytes) -> None:
            self._head_count += 1
            if self._head_count > self.head_limits.max_header_count:
                self._refusal = _response(
                    b"431 Request Header Fields Too Large", "too many headers"
                )
                raise _Refused
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._reading_head = False
            self._stop_head_timer()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            # What arrives next is the next request's head (its timer starts with it).
            self._reading_head = True
            self._head_bytes = 0

        def send_400_response(self, msg: str) -> None:
            if self._refusal is not None:  # the parser stopped because we told it to
                self._refuse(self._refusal)
                return
            super().send_400_response(msg)

        def _refuse(self, response: bytes) -> None:
            self._stop_head_timer()
            if not self.transport.is_closing():
                self.transport.write(response)
                self.transport.close()

        def _start_head_timer(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(
                    self.head_limits.header_timeout, self._head_too_slow
                )

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_too_slow(self) -> None:
            self._head_timer = None
            if not self._reading_head or self.transport.is_closing():
                return
            if self._head_bytes:
                self._refuse(_response(b"408 Request Timeout", "headers not received in time"))
            else:  # connected and said nothing: nobody to answer
                self.transport.close()

    return LimitedHttpToolsProtocol


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.Config`` that apply the settings' limits."""
    limits = HeaderLimits(
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        header_timeout=settings.header_timeout,
    )
    return {
        "http": limited_protocol(limits),
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_timeout,
    }
