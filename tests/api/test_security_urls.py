"""Endpoint URLs: HTTPS-only mode holds at send time too, spaces are refused, and with the
private-network guard on a private destination is refused when saved (issue 18, finding
12). The send-time guard itself is tested in tests/delivery/test_ssrf.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from postback.signing import generate_secret
from tests.support.polling import eventually
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _auth(server: ServerHandle) -> dict[str, str]:
    return {"authorization": f"Bearer {server.token}"}


def _app(server: ServerHandle) -> str:
    return httpx.post(f"{server.url}/api/v1/app", json={"name": "s"}, headers=_auth(server)).json()[
        "id"
    ]


def test_https_only_holds_for_endpoints_saved_before_it_was_set(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    server = make_server(require_https=True)
    app = _app(server)
    # Saved while the server still allowed http (written past the API's check).
    url = receiver.route("/plain", ok())
    server.call(lambda s: s.create_endpoint(app, {"url": url, "secret": generate_secret()}))
    api = f"{server.url}/api/v1/app/{app}"
    msg = httpx.post(
        f"{api}/msg", json={"eventType": "a", "payload": {"n": 1}}, headers=_auth(server)
    ).json()
    attempts = eventually(
        lambda: httpx.get(f"{api}/attempt/msg/{msg['id']}", headers=_auth(server)).json()["data"],
        what="an attempt is recorded",
    )
    assert attempts[0]["responseStatusCode"] == 0
    assert "POSTBACK_REQUIRE_HTTPS" in attempts[0]["response"]
    time.sleep(0.3)
    assert receiver.received("/plain") == []


@pytest.mark.parametrize(
    "url",
    [
        "http://shop example.com/h",
        "http://shop.example.com/a b",
        "http://shop.example.com/\tx",
        "https://shop.example.com/h\n",
        " https://shop.example.com/h",
    ],
)
def test_urls_with_spaces_are_refused(server: ServerHandle, url: str) -> None:
    app = _app(server)
    base = f"{server.url}/api/v1/app/{app}/endpoint"
    answer = httpx.post(base, json={"url": url}, headers=_auth(server))
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "url"]
    created = httpx.post(base, json={"url": "https://shop.example.com/h"}, headers=_auth(server))
    patched = httpx.patch(
        f"{base}/{created.json()['id']}", json={"url": url}, headers=_auth(server)
    )
    assert patched.status_code == 422


PRIVATE = [
    "http://127.0.0.1:9/h",
    "http://10.1.2.3/h",
    "http://[::1]/h",
    "http://[::ffff:127.0.0.1]/h",
    "http://2130706433/h",
    "http://0x7f.1/h",
    "http://169.254.169.254/latest/meta-data",
    "http://localhost:9/h",  # a name that resolves to loopback
]


def test_private_destinations_are_refused_when_saved_with_the_guard_on(
    make_server: Callable[..., ServerHandle],
) -> None:
    server = make_server(allow_private_networks=False)
    app = _app(server)
    base = f"{server.url}/api/v1/app/{app}/endpoint"
    public = httpx.post(base, json={"url": "https://93.184.216.34/h"}, headers=_auth(server))
    assert public.status_code == 201
    ep = public.json()["id"]
    for url in PRIVATE:
        created = httpx.post(base, json={"url": url}, headers=_auth(server))
        assert created.status_code == 422, url
        (detail,) = created.json()["detail"]
        assert detail["loc"] == ["body", "url"] and "non-public" in detail["msg"]
        patched = httpx.patch(f"{base}/{ep}", json={"url": url}, headers=_auth(server))
        assert patched.status_code == 422, url
        put = httpx.put(
            f"{base}/new-{PRIVATE.index(url)}", json={"url": url}, headers=_auth(server)
        )
        assert put.status_code == 422, url
    listed = httpx.get(base, headers=_auth(server)).json()["data"]
    assert [e["url"] for e in listed] == ["https://93.184.216.34/h"]


def test_private_destinations_are_fine_when_the_guard_is_off(server: ServerHandle) -> None:
    app = _app(server)
    base = f"{server.url}/api/v1/app/{app}/endpoint"
    for url in PRIVATE:
        assert httpx.post(base, json={"url": url}, headers=_auth(server)).status_code == 201
