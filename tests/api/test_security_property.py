"""Property: arbitrary JSON text (every escape, lone surrogates, deep nesting, huge and tiny
numbers, NaN and Infinity) sent to the routes that take JSON never gets a 5xx; what can be
kept exactly is accepted, what cannot is a 422, and whatever is accepted reads back, lists
and is delivered byte for byte (issue 18, "what must be true")."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from postback.domain import encode_json
from tests.support.polling import eventually
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle

MAX_DEPTH = 64  # the default POSTBACK_MAX_PAYLOAD_DEPTH
WHITESPACE = st.sampled_from(["", "", " ", "\n", "\t", "\r\n  "])
SHORT_ESCAPES = ['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"]


def _u(code: int, upper: bool) -> str:
    text = f"\\u{code:04x}"
    return text.upper().replace("\\U", "\\u") if upper else text


@st.composite
def string_text(draw: st.DrawFn) -> str:
    """A JSON string literal: raw characters, escapes of every kind, and now and then a
    lone surrogate or an escaped surrogate pair."""
    units = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["raw", "raw", "raw", "u", "short", "pair", "lone"]))
        if kind == "raw":
            c = draw(st.characters(codec="utf-8"))
            units.append(_u(ord(c), draw(st.booleans())) if c in '"\\' or ord(c) < 0x20 else c)
        elif kind == "u":
            code = draw(st.integers(0, 0xFFFF).filter(lambda n: not 0xD800 <= n <= 0xDFFF))
            units.append(_u(code, draw(st.booleans())))
        elif kind == "short":
            units.append(draw(st.sampled_from(SHORT_ESCAPES)))
        elif kind == "pair":
            code = draw(st.integers(0x10000, 0x10FFFF)) - 0x10000
            units.append(_u(0xD800 + (code >> 10), False) + _u(0xDC00 + (code & 0x3FF), True))
        else:
            units.append(_u(draw(st.integers(0xD800, 0xDFFF)), draw(st.booleans())))
    return '"' + "".join(units) + '"'


NUMBER_TEXT = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.tuples(st.integers(-99, 99), st.integers(-450, 450)).map(lambda t: f"{t[0]}e{t[1]}"),
    st.sampled_from(["-0", "0.0", "1E2", "1e-400", "NaN", "Infinity", "-Infinity", "1e400"]),
)
SCALAR_TEXT = st.one_of(NUMBER_TEXT, string_text(), st.sampled_from(["true", "false", "null"]))


def _array(items: list[str], ws: str) -> str:
    return "[" + ws + ("," + ws).join(items) + ws + "]"


def _object(pairs: list[tuple[str, str]], ws: str) -> str:
    return "{" + ws + ("," + ws).join(f"{k}{ws}:{ws}{v}" for k, v in pairs) + ws + "}"


VALUE_TEXT = st.recursive(
    SCALAR_TEXT,
    lambda inner: st.one_of(
        st.builds(_array, st.lists(inner, max_size=4), WHITESPACE),
        st.builds(_object, st.lists(st.tuples(string_text(), inner), max_size=4), WHITESPACE),
    ),
    max_leaves=12,
)


@st.composite
def deep_text(draw: st.DrawFn) -> str:
    levels = draw(st.one_of(st.integers(1, 70), st.sampled_from([63, 64, 65, 255, 256, 1100])))
    inner = draw(SCALAR_TEXT)
    if draw(st.booleans()):
        return "[" * levels + inner + "]" * levels
    return '{"d":' * levels + inner + "}" * levels


@st.composite
def payload_text(draw: st.DrawFn) -> str:
    """JSON text for a message payload (an object, as Svix's API requires)."""
    text = draw(st.one_of(VALUE_TEXT, VALUE_TEXT, deep_text()))
    return text if text.startswith("{") else '{"v":' + text + "}"


# ---- the oracle: what can be kept exactly ----------------------------------------------


class Unkeepable(Exception):
    pass


def _refuse(_: str) -> Any:
    raise Unkeepable


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise Unkeepable
    return value


def _depth_and_surrogates(value: Any) -> tuple[int, bool]:
    """How deep ``value`` nests, and whether any text in it holds a lone surrogate."""
    deepest, lone = 0, False
    stack = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str):
            lone = lone or any(0xD800 <= ord(c) <= 0xDFFF for c in node)
        elif isinstance(node, dict):
            deepest = max(deepest, level + 1)
            stack.extend((k, level) for k in node)
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, level + 1)
            stack.extend((v, level + 1) for v in node)
    return deepest, lone


def keepable(text: str) -> tuple[bool, Any]:
    """(True, value) when ``text`` can be kept exactly; (False, None) when it cannot."""
    try:
        value = json.loads(text, parse_constant=_refuse, parse_float=_finite)
    except (Unkeepable, RecursionError):
        return False, None
    deepest, lone = _depth_and_surrogates(value)
    if deepest > MAX_DEPTH or lone:
        return False, None
    return True, value


# ---- the server ------------------------------------------------------------------------


class Target:
    def __init__(self, server: ServerHandle, receiver: Receiver) -> None:
        self.server = server
        self.receiver = receiver
        self.client = httpx.Client(
            base_url=f"{server.url}/api/v1",
            headers={"authorization": f"Bearer {server.token}", "content-type": "application/json"},
            timeout=30,
        )
        self.app = self.client.post("/app", content=b'{"name":"prop"}').json()["id"]
        url = receiver.route("/p", ok())
        self.ep = self.client.post(f"/app/{self.app}/endpoint", json={"url": url}).json()["id"]

    def delivered(self, msg_id: str, timeout: float = 30) -> bytes:
        def body() -> tuple[bytes] | None:  # a tuple: an empty body is delivered too
            for got in self.receiver.received("/p"):
                if got.headers.get("webhook-id") == msg_id:
                    return (got.body,)
            return None

        return eventually(body, timeout, interval=0.01, what=f"{msg_id} delivered")[0]


@pytest.fixture
def target(server: ServerHandle) -> Iterator[Target]:
    with Receiver() as receiver:
        t = Target(server, receiver)
        yield t
        t.client.close()


PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check_accepted(target: Target, answer: httpx.Response, value: Any) -> None:
    msg = json.loads(answer.content)
    assert msg["payload"] == value
    exact = encode_json(value)  # the compact form the payload is kept and sent in
    assert target.delivered(msg["id"]) == exact
    read = target.client.get(f"/app/{target.app}/msg/{msg['id']}")
    assert read.status_code == 200 and json.loads(read.content)["payload"] == value
    listed = target.client.get(f"/app/{target.app}/msg", params={"limit": 1})
    assert listed.status_code == 200
    assert json.loads(listed.content)["data"][0]["payload"] == value


@PROPERTY
@given(text=payload_text())
def test_messages_take_what_can_be_kept_and_give_it_back_exactly(target: Target, text: str) -> None:
    body = '{"eventType":"prop.any","payload":' + text + "}"
    answer = target.client.post(
        f"/app/{target.app}/msg", content=body.encode("utf-8", "surrogatepass")
    )
    assert answer.status_code < 500, answer.text
    can_keep, value = keepable(text)
    event("kept" if can_keep else "refused")
    if not can_keep:
        assert answer.status_code == 422, (text[:200], answer.text[:300])
        assert answer.json()["detail"][0]["loc"][:2] == ["body", "payload"]
        return
    assert answer.status_code == 202, (text[:200], answer.text[:300])
    _check_accepted(target, answer, value)


@PROPERTY
@given(text=payload_text())
def test_test_events_take_what_can_be_kept_and_send_it_exactly(target: Target, text: str) -> None:
    body = '{"eventType":"prop.any","payload":' + text + "}"
    path = f"/app/{target.app}/endpoint/{target.ep}/send-example"
    answer = target.client.post(path, content=body.encode("utf-8", "surrogatepass"))
    assert answer.status_code < 500, answer.text
    can_keep, value = keepable(text)
    event("kept" if can_keep else "refused")
    if not can_keep:
        assert answer.status_code == 422, (text[:200], answer.text[:300])
        return
    assert answer.status_code == 200, (text[:200], answer.text[:300])  # Svix: 200, the message
    _check_accepted(target, answer, value)


@PROPERTY
@given(text=st.one_of(VALUE_TEXT, deep_text()), route=st.sampled_from(["app", "type", "hdr"]))
def test_other_json_routes_never_fail_and_keep_what_they_accept(
    target: Target, text: str, route: str
) -> None:
    if route == "app":
        body, path = '{"name":"a","metadata":' + text + "}", "/app"
    elif route == "type":
        name = f"prop.t{time.monotonic_ns()}"
        body, path = '{"name":"' + name + '","schemas":{"1":' + text + "}}", "/event-type"
    else:
        body, path = (
            '{"headers":{"x-prop":' + text + "}}",
            f"/app/{target.app}/endpoint/{target.ep}/headers",
        )
    raw = body.encode("utf-8", "surrogatepass")
    send = target.client.put if route == "hdr" else target.client.post
    answer = send(path, content=raw)
    assert answer.status_code < 500, (text[:200], answer.text[:300])
    can_keep, value = keepable(text)
    event("kept" if can_keep else "refused")
    if not can_keep:
        assert answer.status_code == 422, (text[:200], answer.text[:300])
        return
    if answer.status_code >= 300:
        return  # valid JSON of the wrong shape for the field: the model said why
    if route == "app":
        kept = target.client.get(f"/app/{answer.json()['id']}").json()["metadata"]
    elif route == "type":
        kept = target.client.get(f"/event-type/{name}").json()["schemas"]["1"]
    else:
        kept = target.client.get(f"/app/{target.app}/endpoint/{target.ep}/headers").json()
        kept = kept["headers"].get("x-prop", value)  # a header value: a string
    assert kept == value
