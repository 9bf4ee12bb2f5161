"""An open SSE stream ends with its token: logout, expire-all and revocation close it, and
nothing posted afterwards arrives on it (issue 18, finding 4)."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.server import ServerHandle


class StreamReader:
    """Reads an SSE stream in a thread: the message ids seen, and whether it ended."""

    def __init__(self, url: str, token: str) -> None:
        self.ids: list[str] = []
        self.ended = threading.Event()
        self._url, self._token = url, token
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        headers = {"authorization": f"Bearer {self._token}"}
        try:
            with httpx.stream("GET", self._url, headers=headers, timeout=30) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.ids.append(httpx.Response(200, content=line[6:]).json()["id"])
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def wait_for(self, msg_id: str, timeout: float = 30) -> None:
        eventually(lambda: msg_id in self.ids, timeout, what=f"{msg_id} on the stream")


def _api(server: ServerHandle, method: str, path: str, token: str, **kw: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"}
    return httpx.request(method, f"{server.url}/api/v1{path}", headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def _send(server: ServerHandle, app: str, n: int) -> str:
    answer = _api(
        server,
        "POST",
        f"/app/{app}/msg",
        server.token,
        json={"eventType": "a", "payload": {"n": n}},
    )
    return answer.json()["id"]


def _portal_token(server: ServerHandle, app: str) -> str:
    return _api(server, "POST", f"/auth/app-portal-access/{app}", server.token, json={}).json()[
        "token"
    ]


@pytest.mark.parametrize("how", ["logout", "expire-all", "revoke-operator"])
def test_a_stream_ends_when_its_token_does(server: ServerHandle, how: str) -> None:
    app = _api(server, "POST", "/app", server.token, json={"name": "live"}).json()["id"]
    if how == "revoke-operator":
        token_id, token = server.call(lambda s: s.create_operator_token("streamer"))
    else:
        token = _portal_token(server, app)
    reader = StreamReader(f"{server.url}/api/v1/app/{app}/events/stream", token)
    before = _send(server, app, 1)
    reader.wait_for(before)

    if how == "logout":
        assert _api(server, "POST", "/auth/logout", token).status_code == 204
    elif how == "expire-all":
        assert _api(server, "POST", f"/auth/app/{app}/expire-all", server.token).status_code == 204
    else:
        server.call(lambda s: s.revoke_operator_token(token_id))
    after = _send(server, app, 2)
    assert reader.ended.wait(10), "the stream is still open"
    assert after not in reader.ids
    # The token itself no longer opens a stream.
    again = _api(server, "GET", f"/app/{app}/events/stream", token)
    assert again.status_code == 401
