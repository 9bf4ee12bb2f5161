"""JSON the server cannot keep exactly is refused at the edge with a 422 naming the field;
what is accepted reads back, lists and delivers (issue 18, findings 3 and 10)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _post(server: ServerHandle, path: str, raw: bytes) -> httpx.Response:
    headers = {"authorization": f"Bearer {server.token}", "content-type": "application/json"}
    return httpx.post(f"{server.url}/api/v1{path}", content=raw, headers=headers, timeout=20)


def _get(server: ServerHandle, path: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {server.token}"}
    return httpx.get(f"{server.url}/api/v1{path}", headers=headers, timeout=20)


def _setup(server: ServerHandle, url: str = "http://127.0.0.1:9/h") -> tuple[str, str]:
    app = _post(server, "/app", b'{"name":"shop"}').json()["id"]
    ep = _post(server, f"/app/{app}/endpoint", orjson.dumps({"url": url})).json()["id"]
    return app, ep


def _nested(levels: int) -> bytes:
    """An object ``levels`` deep: {"a":{"a":...{}}}."""
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


BAD_VALUES = [
    (rb'{"note":"\ud83d"}', ["body", "payload", "note"]),
    (rb'{"list":[1,"\udc00x"]}', ["body", "payload", "list", "1"]),
    (rb'{"\ud83d":1}', ["body", "payload", "\\ud83d"]),
    (b'{"n":1e400}', ["body", "payload", "n"]),
    (b'{"n":-1e400}', ["body", "payload", "n"]),
    (b'{"n":NaN}', ["body", "payload", "n"]),
    (b'{"n":[Infinity]}', ["body", "payload", "n", "0"]),
    (b'{"n":-Infinity}', ["body", "payload", "n"]),
]


@pytest.mark.parametrize(("payload", "loc"), BAD_VALUES)
def test_values_that_cannot_be_kept_are_422_naming_the_field(
    server: ServerHandle, payload: bytes, loc: list
) -> None:
    app, ep = _setup(server)
    sent = _post(server, f"/app/{app}/msg", b'{"eventType":"a","payload":' + payload + b"}")
    assert sent.status_code == 422, sent.text
    assert sent.json()["detail"][0]["loc"] == loc
    example = _post(
        server,
        f"/app/{app}/endpoint/{ep}/send-example",
        b'{"eventType":"a","payload":' + payload + b"}",
    )
    assert example.status_code == 422 and example.json()["detail"][0]["loc"] == loc
    assert _get(server, f"/app/{app}/msg").json()["data"] == []


def test_endpoint_headers_and_event_types_refuse_surrogates(server: ServerHandle) -> None:
    app, ep = _setup(server)
    bad = _post(
        server, f"/app/{app}/endpoint", rb'{"url":"http://127.0.0.1:9/","headers":{"x-a":"\ud83d"}}'
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "headers", "x-a"]
    put = httpx.put(
        f"{server.url}/api/v1/app/{app}/endpoint/{ep}/headers",
        content=rb'{"headers":{"x-a":"\ud83d"}}',
        headers={"authorization": f"Bearer {server.token}", "content-type": "application/json"},
    )
    assert put.status_code == 422 and put.json()["detail"][0]["loc"] == ["body", "headers", "x-a"]
    assert _get(server, f"/app/{app}/endpoint/{ep}/headers").status_code == 200
    schema = rb'{"name":"s.x","schemas":{"1":{"type":"object","examples":[{"a":"\udfff"}]}}}'
    refused = _post(server, "/event-type", schema)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "schemas", "1", "examples", "0", "a"]
    huge = _post(server, "/event-type", b'{"name":"s.y","schemas":{"1":{"maximum":1e999}}}')
    assert huge.status_code == 422


def test_a_payload_deeper_than_the_limit_is_422(server: ServerHandle) -> None:
    app, _ = _setup(server)
    for levels in (65, 256, 2000):
        body = b'{"eventType":"a","payload":' + _nested(levels) + b"}"
        sent = _post(server, f"/app/{app}/msg", body)
        assert sent.status_code == 422, (levels, sent.text[:200])
        assert sent.json()["detail"][0]["loc"] == ["body", "payload"]
        assert "64" in sent.json()["detail"][0]["msg"]
    headers = b'{"url":"http://127.0.0.1:9/","metadata":' + _nested(300) + b"}"
    assert _post(server, f"/app/{app}/endpoint", headers).status_code == 422
    assert _get(server, f"/app/{app}/msg").status_code == 200


def test_a_payload_at_the_limit_reads_back_lists_and_delivers(
    server: ServerHandle, receiver: Receiver
) -> None:
    app, _ = _setup(server, receiver.route("/deep", ok()))
    payload = _nested(64)
    sent = _post(server, f"/app/{app}/msg", b'{"eventType":"a","payload":' + payload + b"}")
    assert sent.status_code == 202, sent.text[:300]
    msg_id = sent.json()["id"]
    expected = orjson.loads(payload)
    assert _get(server, f"/app/{app}/msg/{msg_id}").json()["payload"] == expected
    (listed,) = _get(server, f"/app/{app}/msg").json()["data"]
    assert listed["payload"] == expected
    (event,) = _get(server, f"/app/{app}/events").json()["data"]
    assert event["payload"] == expected
    (got,) = receiver.wait_for(1, "/deep")
    assert got.body == payload


def test_the_depth_limit_is_a_setting(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(max_payload_depth=8)
    app, _ = _setup(server)
    assert (
        _post(
            server, f"/app/{app}/msg", b'{"eventType":"a","payload":' + _nested(8) + b"}"
        ).status_code
        == 202
    )
    too_deep = _post(server, f"/app/{app}/msg", b'{"eventType":"a","payload":' + _nested(9) + b"}")
    assert too_deep.status_code == 422 and "8 levels" in too_deep.json()["detail"][0]["msg"]


def test_big_integers_are_kept_exactly(server: ServerHandle, receiver: Receiver) -> None:
    app, _ = _setup(server, receiver.route("/big", ok()))
    payload = b'{"n":123456789012345678901234567890,"m":-18446744073709551617,"f":1.5e300}'
    sent = _post(server, f"/app/{app}/msg", b'{"eventType":"a","payload":' + payload + b"}")
    assert sent.status_code == 202
    (got,) = receiver.wait_for(1, "/big")
    assert json.loads(got.body) == json.loads(payload)  # the standard library keeps big ints
    assert b"-18446744073709551617" in got.body
    assert b"123456789012345678901234567890" in _get(server, f"/app/{app}/msg").content
