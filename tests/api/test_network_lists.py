"""CIDR allow and deny lists (POSTBACK_ALLOWED_NETWORKS, POSTBACK_DENIED_NETWORKS): checked
when an endpoint is saved and when it is sent to, IPv4 and IPv6; and a dead egress proxy's
failures, recorded as proxy errors, leave the endpoint's health alone."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from postback.config import Settings, SettingsError
from postback.delivery.ssrf import NetworkPolicy, parse_networks
from tests.support.proxies import free_port
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle

# Generous: a loaded machine answers slowly, and nothing here measures time.
HTTP = httpx.Client(timeout=30)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        r.route("/hook", ok())
        yield r


def _auth(server: ServerHandle) -> dict[str, str]:
    return {"authorization": f"Bearer {server.token}"}


def _endpoints(server: ServerHandle) -> str:
    app = HTTP.post(f"{server.url}/api/v1/app", json={"name": "n"}, headers=_auth(server))
    return f"{server.url}/api/v1/app/{app.json()['id']}/endpoint"


def _attempts(server: ServerHandle, base: str, ep: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 20
    while True:
        app_base = base.rsplit("/endpoint", 1)[0]
        got = HTTP.get(f"{app_base}/attempt/endpoint/{ep}", headers=_auth(server))
        data = got.json()["data"]
        if len(data) >= count:
            return data
        assert time.monotonic() < deadline, f"expected {count} attempts, got {data}"
        time.sleep(0.1)


@pytest.mark.parametrize("name", ["allowed_networks", "denied_networks"])
def test_an_invalid_cidr_is_a_settings_error_naming_the_variable(name: str) -> None:
    env = f"POSTBACK_{name.upper()}"
    with pytest.raises(SettingsError, match=f"{env}: not a CIDR network: '10.0.0.0/33'"):
        Settings.from_env({env: "10.1.0.0/16, 10.0.0.0/33"})
    with pytest.raises(SettingsError, match=env):
        Settings.from_env({env: "intranet"})
    assert Settings.from_env({env: "10.1.0.0/16, 2001:db8::/32 , 192.0.2.7"})


def test_a_malformed_proxy_url_is_a_settings_error() -> None:
    for bad in ("ftp://proxy:21", "http://proxy", "proxy.internal:3128"):
        with pytest.raises(SettingsError, match="POSTBACK_EGRESS_PROXY"):
            Settings.from_env({"POSTBACK_EGRESS_PROXY": bad})
    assert Settings.from_env({"POSTBACK_EGRESS_PROXY": "socks5h://u:p@10.0.0.5:1080"})


def test_policy_order_and_ipv6() -> None:
    policy = NetworkPolicy(
        allowed=parse_networks("10.20.0.0/16, fd00:1::/32"),
        denied=parse_networks("10.20.5.0/24, 198.51.100.0/24, 2a00:1450::/32"),
    )
    ip = ipaddress.ip_address
    assert policy.refusal(ip("10.20.1.1")) is None  # allowed, though private
    assert policy.refusal(ip("10.20.5.9")) == "in POSTBACK_DENIED_NETWORKS"  # deny wins
    assert policy.refusal(ip("10.21.0.1")) == "a non-public address"  # the default list
    assert policy.refusal(ip("fd00:1::5")) is None
    assert policy.refusal(ip("fd00:2::5")) == "a non-public address"
    assert policy.refusal(ip("2a00:1450::1")) == "in POSTBACK_DENIED_NETWORKS"
    # An IPv4 entry covers the IPv6 forms that reach the same address.
    assert policy.refusal(ip("::ffff:10.20.5.9")) == "in POSTBACK_DENIED_NETWORKS"
    assert policy.refusal(ip("::ffff:10.20.1.1")) is None
    assert policy.refusal(ip("93.184.216.34")) is None
    everything = NetworkPolicy(denied=parse_networks("0.0.0.0/0, ::/0"), allow_private=True)
    assert everything.refusal(ip("93.184.216.34")) and everything.refusal(ip("2a00::1"))


def test_lists_are_checked_when_an_endpoint_is_saved(
    make_server: Callable[..., ServerHandle],
) -> None:
    server = make_server(
        allow_private_networks=False,
        allowed_networks="127.0.0.1/32, ::1/128",
        denied_networks="203.0.113.0/24, 2001:db8:dead::/48",
    )
    base = _endpoints(server)
    for url in ("http://127.0.0.1:9/h", "http://[::1]:9/h", "https://93.184.216.34/h"):
        assert HTTP.post(base, json={"url": url}, headers=_auth(server)).status_code == 201, url
    refused = {
        "http://127.0.0.2:9/h": "a non-public address",
        "https://203.0.113.9/h": "in POSTBACK_DENIED_NETWORKS",
        "https://[2001:db8:dead::1]/h": "in POSTBACK_DENIED_NETWORKS",
        "https://[::ffff:203.0.113.9]/h": "in POSTBACK_DENIED_NETWORKS",
    }
    for url, why in refused.items():
        answer = HTTP.post(base, json={"url": url}, headers=_auth(server))
        assert answer.status_code == 422, url
        (detail,) = answer.json()["detail"]
        assert detail["loc"] == ["body", "url"] and why in detail["msg"], (url, detail)


def test_lists_are_checked_when_sent(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    # Saved while allowed; then the operator denies the network: nothing goes out.
    open_server = make_server()
    base = _endpoints(open_server)
    url = receiver.url + "/hook"
    ep = HTTP.post(base, json={"url": url}, headers=_auth(open_server)).json()["id"]
    open_server.stop()
    server = make_server(denied_networks="127.0.0.0/8")
    app_base = base.replace(open_server.url, server.url).rsplit("/endpoint", 1)[0]
    sent = HTTP.post(
        f"{app_base}/msg", json={"eventType": "a.b", "payload": {}}, headers=_auth(server)
    )
    assert sent.status_code == 202
    (attempt,) = _attempts(server, f"{app_base}/endpoint", ep, 1)[:1]
    assert "in POSTBACK_DENIED_NETWORKS (SSRF guard)" in attempt["response"]
    assert receiver.received() == []


def test_a_dead_proxy_leaves_the_endpoints_health_alone(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    server = make_server(
        egress_proxy=f"http://127.0.0.1:{free_port()}",  # nothing listens
        circuit_failure_threshold=2,
        retry_schedule=(0.05, 0.05, 0.05),
    )
    base = _endpoints(server)
    ep = HTTP.post(base, json={"url": receiver.url + "/hook"}, headers=_auth(server)).json()["id"]
    app_base = base.rsplit("/endpoint", 1)[0]
    HTTP.post(f"{app_base}/msg", json={"eventType": "a.b", "payload": {}}, headers=_auth(server))
    attempts = _attempts(server, base, ep, 4)  # every attempt of the schedule, all failed
    assert all(a["response"].startswith("proxy error: cannot connect") for a in attempts)
    endpoint = HTTP.get(f"{base}/{ep}", headers=_auth(server)).json()
    assert endpoint["circuit"]["state"] == "closed"  # four failures, threshold two
    assert endpoint["circuit"]["failures"] == 0
    app_id = app_base.rsplit("/", 1)[1]
    failing = server.call(lambda store: store.get_endpoint(app_id, ep))
    assert failing["failing_since"] is None  # the auto-disable clock did not start
    assert receiver.received() == []
