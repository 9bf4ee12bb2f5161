"""The ``idempotency-key`` header on POSTs: a retry with the same key (within 24 hours) gets
the first response and changes nothing; the same key with a different request is a 409.

Keys are scoped to the caller's token, so two customers cannot collide or read each other's
answers. Server errors (5xx) are not remembered: a retry after one runs again.
"""

from __future__ import annotations

import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postback.api import errors
from postback.store.store import Store

HEADER = b"idempotency-key"
MAX_KEY = 256


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(HEADER)
        if not raw_key:
            await self.app(scope, receive, send)
            return
        if len(raw_key) > MAX_KEY:
            await _answer(send, errors.validation_error(["header", "idempotency-key"], "too long"))
            return
        # Read the body once, to fingerprint it, then hand the same bytes on.
        body, more, messages = b"", True, []
        while more:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            more = message.get("more_body", False)
        store: Store = scope["app"].state.store
        scope_hash = hashlib.sha256(headers.get(b"authorization", b"")).digest()
        key = hashlib.sha256(scope_hash + raw_key).hexdigest()
        request = hashlib.sha256(
            scope["path"].rstrip("/").encode()
            + b"?"
            + scope.get("query_string", b"")
            + b"\n"
            + body
        ).hexdigest()

        replay = await store.idempotency_begin(key, request)
        if replay is not None:
            if not replay.same_request:
                detail = "this idempotency-key was used with a different request"
                await _answer(send, errors.error(409, detail, "idempotency_conflict"))
            elif replay.status_code is None:
                detail = "a request with this idempotency-key is still being processed"
                await _answer(send, errors.error(409, detail, "idempotency_in_progress"))
            else:
                await _raw(send, replay.status_code, replay.response, replay.content_type)
            return

        async def replay_body() -> Message:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        status, chunks, content_type = 500, [], "application/json"

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await store.idempotency_abort(key)
            raise
        if status >= 500:
            await store.idempotency_abort(key)
        else:
            await store.idempotency_finish(key, status, b"".join(chunks), content_type)


async def _answer(send: Send, response: errors.JSONResponse) -> None:
    await _raw(send, response.status_code, bytes(response.body), "application/json")


async def _raw(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
