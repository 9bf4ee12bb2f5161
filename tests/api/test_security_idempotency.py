"""Idempotency-key answers: sealed at rest, replayed only to the caller who made them, and
never written for a request that fails authentication (issue 18, finding 1)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import sqlalchemy as sa

from postback.store import schema
from postback.store.store import Store
from tests.support.server import ServerHandle

MARKER = "payload-text-that-must-not-rest-in-the-cache"


def _auth(token: str, key: str | None = None) -> dict[str, str]:
    # Rotations answer with the new key only when asked (Svix's answer is a bare 204).
    headers = {"authorization": f"Bearer {token}", "prefer": "return=representation"}
    if key:
        headers["idempotency-key"] = key
    return headers


async def _dump(store: Store) -> list[dict]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(schema.idempotency_keys))
        return [dict(r._mapping) for r in rows]


def _dump_text(server: ServerHandle) -> str:
    rows = server.call(_dump)
    return "\n".join(
        " ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in r.values())
        for r in rows
    )


def _app_and_endpoint(server: ServerHandle) -> tuple[str, str]:
    api = f"{server.url}/api/v1"
    app = httpx.post(f"{api}/app", json={"name": "shop"}, headers=_auth(server.token)).json()
    ep = httpx.post(
        f"{api}/app/{app['id']}/endpoint",
        json={"url": "http://127.0.0.1:9/h"},
        headers=_auth(server.token),
    ).json()
    return app["id"], ep["id"]


def test_stored_answers_hold_no_secret_token_or_payload(server: ServerHandle) -> None:
    api = f"{server.url}/api/v1"
    app_id, ep_id = _app_and_endpoint(server)
    rotate = f"{api}/app/{app_id}/endpoint/{ep_id}/secret/rotate"
    secret = httpx.post(rotate, json={}, headers=_auth(server.token, "rot-1")).json()["key"]
    portal = httpx.post(
        f"{api}/auth/app-portal-access/{app_id}", json={}, headers=_auth(server.token, "pa-1")
    ).json()["token"]
    msg_url = f"{api}/app/{app_id}/msg"
    body = {"eventType": "a", "payload": {"note": MARKER}}
    first = httpx.post(msg_url, json=body, headers=_auth(server.token, "msg-1"))
    assert first.status_code == 202

    dump = _dump_text(server)
    assert server.call(_dump), "the answers were stored"
    for leaked in ("whsec_", secret, portal, "pbapp_", MARKER):
        assert leaked not in dump

    # Replays still give the first answers.
    assert httpx.post(rotate, json={}, headers=_auth(server.token, "rot-1")).json() == {
        "key": secret
    }
    again = httpx.post(msg_url, json=body, headers=_auth(server.token, "msg-1"))
    assert again.status_code == 202 and again.json() == first.json()


def test_expunged_payload_is_gone_from_the_replay(server: ServerHandle) -> None:
    api = f"{server.url}/api/v1"
    app_id, _ = _app_and_endpoint(server)
    msg_url = f"{api}/app/{app_id}/msg"
    body = {"eventType": "a", "payload": {"note": MARKER}}
    first = httpx.post(msg_url, json=body, headers=_auth(server.token, "msg-x")).json()
    assert first["payload"] == {"note": MARKER}
    gone = httpx.delete(f"{msg_url}/{first['id']}/content", headers=_auth(server.token))
    assert gone.status_code == 204
    replay = httpx.post(msg_url, json=body, headers=_auth(server.token, "msg-x"))
    assert replay.status_code == 202
    assert replay.json()["id"] == first["id"] and MARKER not in replay.text


def test_a_revoked_or_expired_token_gets_401_not_the_stored_answer(server: ServerHandle) -> None:
    api = f"{server.url}/api/v1"
    app_id, ep_id = _app_and_endpoint(server)
    rotate = f"{api}/app/{app_id}/endpoint/{ep_id}/secret/rotate"
    token_id, other = server.call(lambda s: s.create_operator_token("second"))
    assert httpx.post(rotate, json={}, headers=_auth(other, "k")).status_code == 200
    server.call(lambda s: s.revoke_operator_token(token_id))
    replay = httpx.post(rotate, json={}, headers=_auth(other, "k"))
    assert replay.status_code == 401 and "whsec_" not in replay.text

    # A portal token after expire-all: the same.
    portal = httpx.post(
        f"{api}/auth/app-portal-access/{app_id}", json={}, headers=_auth(server.token)
    ).json()["token"]
    assert httpx.post(rotate, json={}, headers=_auth(portal, "p")).status_code == 200
    expired = httpx.post(f"{api}/auth/app/{app_id}/expire-all", headers=_auth(server.token))
    assert expired.status_code == 204
    replay = httpx.post(rotate, json={}, headers=_auth(portal, "p"))
    assert replay.status_code == 401 and "whsec_" not in replay.text


def test_another_token_with_the_same_key_never_gets_the_answer(server: ServerHandle) -> None:
    api = f"{server.url}/api/v1"
    app_id, ep_id = _app_and_endpoint(server)
    rotate = f"{api}/app/{app_id}/endpoint/{ep_id}/secret/rotate"
    mine = httpx.post(rotate, json={}, headers=_auth(server.token, "shared")).json()["key"]
    _, other = server.call(lambda s: s.create_operator_token("second"))
    theirs = httpx.post(rotate, json={}, headers=_auth(other, "shared")).json()["key"]
    assert theirs != mine  # ran again for the other caller: a new secret


def test_unauthenticated_and_forbidden_requests_leave_no_row(server: ServerHandle) -> None:
    api = f"{server.url}/api/v1"
    app_id, _ = _app_and_endpoint(server)
    with httpx.Client() as client:
        for n in range(100):
            answer = client.post(
                f"{api}/app", json={"name": "x"}, headers=_auth(f"garbage-{n}", f"key-{n}")
            )
            assert answer.status_code == 401
        read_only = client.post(
            f"{api}/auth/app-portal-access/{app_id}",
            json={"readOnly": True},
            headers=_auth(server.token),
        ).json()["token"]
        refused = client.post(
            f"{api}/app/{app_id}/msg",
            json={"eventType": "a", "payload": {}},
            headers=_auth(read_only, "ro-1"),
        )
        assert refused.status_code == 403
        no_header = client.post(
            f"{api}/app", json={"name": "x"}, headers={"idempotency-key": "anon"}
        )
        assert no_header.status_code == 401
    assert server.call(_dump) == []


async def test_a_plaintext_answer_from_before_sealing_is_not_replayed(store: Store) -> None:
    c = schema.idempotency_keys
    async with store.engine.begin() as conn:
        await conn.execute(
            c.insert().values(
                key="k" * 64,
                request_hash="r",
                status_code=200,
                response=b'{"key":"whsec_old"}',
                content_type="application/json",
                created_at=store.clock(),
            )
        )
    assert await store.idempotency_begin("k" * 64, "r") is None  # runs again
    await store.idempotency_finish("k" * 64, 200, b'{"key":"whsec_new"}', "application/json")
    (row,) = await _dump(store)
    assert b"whsec_" not in row["response"]
    replay = await store.idempotency_begin("k" * 64, "r")
    assert replay is not None and replay.response == b'{"key":"whsec_new"}'


def test_a_retry_the_moment_the_answer_arrives_is_a_replay(server: ServerHandle) -> None:
    """The answer is remembered before the client sees it end: a client that retries as
    soon as it has it gets the same answer again, never 'still being processed', even when
    the database is slow to write the answer down."""
    store = server.store
    assert store is not None
    real_finish = store.idempotency_finish

    async def slow_finish(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)  # a database slow to commit the answer
        return await real_finish(*args, **kwargs)

    store.idempotency_finish = slow_finish  # type: ignore[method-assign]
    api = server.url + "/api/v1"
    with httpx.Client(timeout=30) as client:
        for n in range(3):
            headers = _auth(server.token, f"app-{n}")
            first = client.post(f"{api}/app", json={"name": f"shop {n}"}, headers=headers)
            again = client.post(f"{api}/app", json={"name": f"shop {n}"}, headers=headers)
            assert first.status_code == 201, first.text
            assert again.status_code == 201, again.text
            assert again.json()["id"] == first.json()["id"]
