"""A fast webhook receiver for the benchmarks, in its own process.

    python bench/receiver.py PORT [--delay SECONDS]

HTTP/1.1 with keep-alive on a bare asyncio protocol (uvloop and httptools when installed), so
the receiver costs as little as possible and the figures measure the sender. Every POST is
answered ``200`` (after ``--delay`` seconds, to hold many requests open at once) and its
arrival time is kept under its ``webhook-id`` (or a counter when there is none).

Control routes (GET): ``/_stats`` → ``{"count", "in_flight", "max_in_flight"}``;
``/_times`` → ``{id: arrival unix time}``; ``/_reset`` forgets everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httptools

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


class State:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def reset(self) -> None:
        self.arrivals.clear()
        self.count = self.in_flight = self.max_in_flight = 0


class Hook(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.webhook_id = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.webhook_id = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"webhook-id":
            self.webhook_id = value

    def on_message_complete(self) -> None:
        state = self.state
        if self.parser.get_method() == b"GET" and self.url.startswith(b"/_"):
            self._control(self.url.decode())
            return
        now = time.time()
        state.count += 1
        key = self.webhook_id.decode() if self.webhook_id else f"#{state.count}"
        # A retry of the same message to another path keeps its first arrival per path.
        state.arrivals.setdefault(f"{self.url.decode()} {key}", now)
        if state.delay:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            asyncio.get_running_loop().call_later(state.delay, self._answer_late)
        else:
            self._write(OK)

    def _answer_late(self) -> None:
        self.state.in_flight -= 1
        self._write(OK)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _control(self, url: str) -> None:
        state = self.state
        if url.startswith("/_times"):
            body = json.dumps(state.arrivals).encode()
        elif url.startswith("/_reset"):
            state.reset()
            body = b"{}"
        else:
            body = json.dumps(
                {
                    "count": state.count,
                    "in_flight": state.in_flight,
                    "max_in_flight": state.max_in_flight,
                }
            ).encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
        self._write(head.encode() + b"\r\n\r\n" + body)


async def serve(port: int, delay: float) -> None:
    state = State(delay)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Hook(state), "127.0.0.1", port, backlog=4096)
    print(f"receiver on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port, args.delay))
    else:
        uvloop.run(serve(args.port, args.delay))


if __name__ == "__main__":
    main()
