"""The ``idempotency-key`` header on POSTs: a retry with the same key (within 24 hours) gets
the first response and changes nothing; the same key with a different request is a 409.

Only an authenticated caller's requests are remembered, and only for that caller: the key
is stored as a hash of (token id, key), so another token, or this token once revoked or
expired, never reaches the answer, and a request with a bad token leaves no row. Server
errors (5xx) and refusals of the caller (401, 403) are not remembered: a retry runs again.

Stored answers are sealed (see store/idempotency.py). An answer that is a message (POST
/msg, send-example) is not stored at all: only a reference, and a replay reads the message
again, so a payload deleted since (expunged, or past its retention) is gone from the replay
as well.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postback.api import errors
from postback.api.views import message_json
from postback.store.errors import NotFound
from postback.store.store import Store

HEADER = b"idempotency-key"
MAX_KEY = 256
# Where a route leaves a note for this middleware (see remember_message).
SLOT = "postback.idempotency"
# The content type a message reference is stored under, in place of the message itself.
MESSAGE_REF = "application/x-postback-message-ref"
NOT_REMEMBERED = (401, 403)


def remember_message(scope: dict[str, Any], app_id: str, msg_id: str, with_content: bool) -> None:
    """Called by a route whose answer is a message: keep a reference, not the payload."""
    slot = scope.get(SLOT)
    if slot is not None:
        slot["message"] = {"app": app_id, "msg": msg_id, "content": with_content}


def bearer_of(headers: dict[bytes, bytes]) -> str | None:
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


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
        store: Store = scope["app"].state.store
        token = bearer_of(headers)
        principal = await store.authenticate(token) if token else None
        if principal is None:
            # The route answers 401; nothing is stored and nothing is replayed.
            await self.app(scope, receive, send)
            return
        # Read the body once, to fingerprint it, then hand the same bytes on.
        body, more, messages = b"", True, []
        while more:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            more = message.get("more_body", False)
        owner = hashlib.sha256(b"token:" + principal.token_id.encode()).digest()
        key = hashlib.sha256(owner + raw_key).hexdigest()
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
            elif replay.content_type == MESSAGE_REF:
                await _replay_message(send, store, replay.status_code, replay.response)
            else:
                await _raw(send, replay.status_code, replay.response, replay.content_type)
            return

        async def replay_body() -> Message:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        status, chunks, content_type = 500, [], "application/json"
        note: dict[str, Any] = {}
        recorded = False

        async def record() -> None:
            """Remember the answer (or forget the key) before the client can see it end:
            a client retrying the moment it has the answer must get a replay, not an
            'in progress'."""
            nonlocal recorded
            if status >= 500 or status in NOT_REMEMBERED:
                await store.idempotency_abort(key)
            elif "message" in note and status < 300:
                await store.idempotency_finish(
                    key, status, orjson.dumps(note["message"]), MESSAGE_REF
                )
            else:
                await store.idempotency_finish(key, status, b"".join(chunks), content_type)
            recorded = True  # (if writing it failed, the key is let go below)

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await record()
            await send(message)

        scope[SLOT] = note
        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            if not recorded:
                await store.idempotency_abort(key)
            raise
        if not recorded:
            await record()


async def _replay_message(send: Send, store: Store, status: int, ref: bytes) -> None:
    """The message as it is now: its payload, unless that has been deleted since."""
    note = orjson.loads(ref)
    try:
        row = await store.get_message(note["app"], note["msg"])
    except NotFound:
        await _answer(send, errors.error(404, f"message {note['msg']!r} not found"))
        return
    await _raw(send, status, message_json(row, with_content=note["content"]), "application/json")


async def _answer(send: Send, response: errors.JSONResponse) -> None:
    await _raw(send, response.status_code, bytes(response.body), "application/json")


async def _raw(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
