"""Edges an attacker or a careless user reaches: chunked bodies over the limit, URL
credentials shown to read-only viewers (issue 18, finding 13)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from svix.api import ApplicationIn, AppPortalAccessIn, EndpointIn, MessageIn

from tests.support.polling import eventually
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle
from tests.web.test_web_http import portal_client

# What these tests check does not depend on the database.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"eventType":"a","payload":{"x":"'
    sent = 0
    while sent < total:
        yield b"a" * size
        sent += size
    yield b'"}}'


@pytest.mark.parametrize("path", ["/api/v1/app/{app}/msg", "/api/v1/app", "/portal/session"])
def test_a_chunked_body_over_the_limit_is_413_naming_the_setting(
    server: ServerHandle, path: str
) -> None:
    app_id = server.svix().application.create(ApplicationIn(name="chunked")).id
    auth = {"authorization": f"Bearer {server.token}", "content-type": "application/json"}
    answer = httpx.post(
        server.url + path.format(app=app_id),
        content=_chunks(2 * 1024 * 1024),  # a generator: sent chunked, no content-length
        headers=auth,
        timeout=30,
    )
    assert answer.status_code == 413, answer.text
    detail = answer.json()["detail"]
    assert "POSTBACK_MAX_PAYLOAD_BYTES" in detail and str(1024 * 1024) in detail
    # A body with a content-length over the limit says the same.
    sized = httpx.post(
        server.url + path.format(app=app_id), content=b"".join(_chunks(2 << 20)), headers=auth
    )
    assert sized.status_code == 413 and sized.json()["detail"] == detail
    # A chunked body under the limit still goes through.
    small = httpx.post(
        f"{server.url}/api/v1/app/{app_id}/msg", content=_chunks(1000), headers=auth, timeout=30
    )
    assert small.status_code == 202


def test_read_only_viewers_do_not_see_url_credentials(server: ServerHandle) -> None:
    with Receiver() as receiver:
        receiver.route("/hook", ok())
        svix = server.svix()
        app_id = svix.application.create(ApplicationIn(name="userinfo")).id
        url = receiver.url.replace("http://", "http://alice:s3cr3t@") + "/hook?x=1"
        ep = svix.endpoint.create(app_id, EndpointIn(url=url)).id
        msg = svix.message.create(app_id, MessageIn(event_type="a.b", payload={})).id
        receiver.wait_for(1, "/hook")
    eventually(lambda: svix.message_attempt.list_by_msg(app_id, msg).data, what="an attempt")

    def api_texts(token: str) -> list[str]:
        auth = {"authorization": f"Bearer {token}"}
        base = f"{server.url}/api/v1/app/{app_id}"
        paths = [
            "/endpoint",
            f"/endpoint/{ep}",
            f"/attempt/msg/{msg}",
            f"/attempt/endpoint/{ep}",
            f"/msg/{msg}/endpoint",
        ]
        answers = [httpx.get(base + p, headers=auth) for p in paths]
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        return [a.text for a in answers]

    read_only = svix.authentication.app_portal_access(
        app_id, AppPortalAccessIn(read_only=True)
    ).token
    full = svix.authentication.app_portal_access(app_id, AppPortalAccessIn()).token
    for text in api_texts(read_only):
        assert "s3cr3t" not in text and "alice" not in text, text
        assert "***@127.0.0.1" in text and "/hook?x=1" in text
    # Whoever may change the endpoint sees it as written.
    for token in (full, server.token):
        assert all("alice:s3cr3t@" in text for text in api_texts(token))
    # One kept-alive connection carrying both tokens in turn: each request is judged alone.
    with httpx.Client(base_url=f"{server.url}/api/v1/app/{app_id}") as shared:
        for token, shown in [(read_only, False), (full, True), (read_only, False), (full, True)]:
            text = shared.get(f"/endpoint/{ep}", headers={"authorization": f"Bearer {token}"}).text
            assert ("alice:s3cr3t@" in text) is shown
    # The portal's pages likewise.
    pages = ["/portal/endpoints", f"/portal/endpoints/{ep}", f"/portal/messages/{msg}"]
    pages.append(f"/portal/endpoints/{ep}/edit")
    viewer = portal_client(server, app_id, read_only=True)
    for page in pages:
        answer = viewer.get(page)
        assert answer.status_code == 200, page
        assert "s3cr3t" not in answer.text and "alice" not in answer.text, page
    editor = portal_client(server, app_id)
    assert "alice:s3cr3t@" in editor.get(f"/portal/endpoints/{ep}").text
