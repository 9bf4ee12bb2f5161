"""Endpoint health in the web UI and /metrics, on both databases: the circuit breaker and a
receiver's Retry-After pause on the portal's endpoint pages (in the three languages) and
the dashboard, the gauges and the transition counter, and the form's maxInFlight."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from svix.api import ApplicationIn, EndpointIn, EndpointPatch, MessageIn

from postback.store import schema as t
from postback.store.store import Store
from tests.api.test_metrics import scrape, value
from tests.support.polling import eventually
from tests.support.receivers import Receiver, fail, ok
from tests.support.server import ServerHandle
from tests.web.test_web_http import csrf_of, dashboard_client, portal_client

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = NOW - timedelta(minutes=7)
PROBE = NOW + timedelta(hours=2)  # far enough that no probe is due while the test runs
PAUSED = NOW + timedelta(hours=3)
OPEN = {
    "circuit_state": 1,
    "circuit_since": SINCE,
    "circuit_probe_at": PROBE,
    "circuit_failures": 7,
    "circuit_opens": 2,
}
HALF_OPEN = {
    "circuit_state": 2,
    "circuit_since": SINCE + timedelta(minutes=1),
    "circuit_probe_at": None,
    "circuit_failures": 8,
    "circuit_opens": 1,
}


def shown(at: datetime) -> str:
    """A date as the pages write it."""
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def set_columns(server: ServerHandle, ep_id: str, **columns: Any) -> None:
    """Write an endpoint's breaker columns directly, as the recorder would have."""

    async def write(store: Store) -> None:
        async with store.engine.begin() as conn:
            await conn.execute(
                sa.update(t.endpoints).where(t.endpoints.c.id == ep_id).values(**columns)
            )

    server.call(write)


def _endpoints(server: ServerHandle, app_id: str, receiver: Receiver) -> dict[str, str]:
    svix = server.svix()
    made = {}
    for name in ("open", "half", "paused", "closed", "off", "was_paused"):
        url = receiver.url + f"/{name}/a-rather-long-path/that-a-phone-has-to-wrap"
        made[name] = svix.endpoint.create(app_id, EndpointIn(url=url)).id
    set_columns(server, made["open"], **OPEN)
    set_columns(server, made["half"], **HALF_OPEN)
    set_columns(server, made["paused"], paused_until=PAUSED)
    set_columns(server, made["closed"], circuit_failures=3)  # failing, below the threshold
    set_columns(server, made["was_paused"], paused_until=NOW - timedelta(minutes=1))
    set_columns(server, made["off"], **OPEN)
    svix.endpoint.patch(app_id, made["off"], EndpointPatch(disabled=True))
    # Disabling does not touch the breaker: it stays open, frozen, behind the disabled state.
    set_columns(server, made["off"], **OPEN)
    return made


def test_the_circuit_shows_on_the_portal_the_dashboard_and_metrics(
    server: ServerHandle, receiver: Receiver
) -> None:
    dash = dashboard_client(server)
    home = dash.get("/dashboard/").text
    assert "No circuit is open." in home and 'id="circuits"' not in home
    samples = scrape(server.url)
    assert value(samples, "postback_endpoint_circuits", state="open") == 0
    assert ("postback_endpoint_circuits", (("state", "half-open"),)) in samples

    app_id = server.svix().application.create(ApplicationIn(name="Loja circuito")).id
    eps = _endpoints(server, app_id, receiver)
    portal = portal_client(server, app_id)

    def endpoint_page(name: str, lang: str = "en") -> str:
        got = portal.get(f"/portal/endpoints/{eps[name]}", headers={"accept-language": lang})
        assert got.status_code == 200
        return got.text

    # Open: the state, since when, the next probe and the failures in a row, in each language.
    for lang, words in {
        "en": ("Circuit open", "Next probe", "Failures in a row"),
        "es": ("Circuito abierto", "Próximo sondeo", "Fallos seguidos"),
        "pt-BR": ("Circuito aberto", "Próxima sondagem", "Falhas seguidas"),
    }.items():
        page = endpoint_page("open", lang)
        for word in words:
            assert word in page, (lang, word)
        assert f'id="circuit-since">{shown(SINCE)}<' in page
        assert f'id="circuit-probe">{shown(PROBE)}<' in page
        assert 'id="circuit-failures">7<' in page
    half = endpoint_page("half", "pt-BR")
    assert "Circuito semiaberto" in half and "Sondagem em andamento" in half
    assert f'id="circuit-since">{shown(HALF_OPEN["circuit_since"])}<' in half
    paused = endpoint_page("paused", "es")
    assert "Circuito cerrado" in paused and "En pausa hasta" in paused
    assert f'id="paused-until">{shown(PAUSED)} ' in paused
    closed = endpoint_page("closed")
    assert "Circuit closed" in closed and 'id="circuit-failures">3<' in closed
    assert "Next probe" not in closed and "Paused until" not in closed
    assert "Paused until" not in endpoint_page("was_paused")  # a pause that has passed
    off = endpoint_page("off")
    assert "Disabled" in off and "Circuit open" not in off

    # The list: a badge beside each endpoint whose circuit is not closed, or that is paused.
    rows = {
        name: _row_of(portal.get("/portal/endpoints").text, ep_id) for name, ep_id in eps.items()
    }
    assert "Circuit open" in rows["open"] and "Circuit half-open" in rows["half"]
    assert ">Paused<" in rows["paused"]
    for name in ("closed", "was_paused", "off"):
        assert "Circuit" not in rows[name] and ">Paused<" not in rows[name], name

    # The dashboard: open and half-open circuits of enabled endpoints, with the application.
    home = dash.get("/dashboard/", headers={"accept-language": "es"}).text
    assert "Circuitos abiertos" in home and "Ningún circuito está abierto." not in home
    table = home[home.index('id="circuits"') : home.index('aria-labelledby="dis-h"')]
    assert table.count("<tr>") == 3  # the heading and two endpoints
    assert eps["off"] not in table and "/off/" not in table
    assert "/open/" in table and "/half/" in table and "Loja circuito" in table
    assert shown(PROBE) in table and shown(SINCE) in table and "Sondeo en curso" in table
    assert f"/portal/endpoints/{eps['open']}" in table  # the operator's way to the endpoint
    assert 'id="queue-circuits">2<' in home and 'id="queue-paused">1<' in home

    samples = scrape(server.url)
    assert value(samples, "postback_endpoint_circuits", state="open") == 1
    assert value(samples, "postback_endpoint_circuits", state="half-open") == 1
    assert value(samples, "postback_endpoints_paused") == 1


def _row_of(html: str, ep_id: str) -> str:
    start = html.index(f'href="/portal/endpoints/{ep_id}"')
    return html[start : html.index("</tr>", start)]


def test_real_transitions_are_counted_and_gauged(
    make_server: Callable[..., ServerHandle], receiver: Receiver
) -> None:
    server = make_server(
        circuit_failure_threshold=2, circuit_cooldown=1.5, circuit_max_cooldown=3.0
    )
    before = scrape(server.url)
    svix = server.svix()
    app = svix.application.create(ApplicationIn(name="flaky"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=receiver.route("/flaky", fail(503))))
    for n in range(2):
        svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": n}))

    def delta(samples: dict[Any, float], to: str) -> float:
        name = "postback_circuit_transitions_total"
        return value(samples, name, to=to) - value(before, name, to=to)

    def counted(to: str) -> dict[Any, float]:
        """The first scrape that counts a move ``to`` the state."""

        def check() -> dict[Any, float] | None:
            samples = scrape(server.url)
            return samples if delta(samples, to) >= 1 else None

        return eventually(check)

    opened = counted("open")
    assert delta(opened, "closed") == 0
    # Open (or its probe out) until the receiver recovers: the gauge says so meanwhile.
    circuits = value(opened, "postback_endpoint_circuits", state="open") + value(
        opened, "postback_endpoint_circuits", state="half-open"
    )
    assert circuits == 1
    listed = portal_client(server, app.id).get("/portal/endpoints").text
    assert "Circuit open" in listed or "Circuit half-open" in listed
    receiver.route("/flaky", ok())
    counted("closed")

    def settled() -> dict[Any, float] | None:
        # The move is counted as the recorder decides it; the gauges read the database,
        # where it lands with the recorder's commit: a scrape may fall in between.
        samples = scrape(server.url)
        gauged = sum(
            value(samples, "postback_endpoint_circuits", state=s) for s in ("open", "half-open")
        )
        return samples if gauged == 0 else None

    closed = eventually(settled)
    assert delta(closed, "open") >= 1 and delta(closed, "closed") >= 1
    got = httpx.get(
        f"{server.url}/api/v1/app/{app.id}/endpoint/{ep.id}",
        headers={"authorization": f"Bearer {server.token}"},
    )
    assert got.json()["circuit"]["state"] == "closed"


def _api_endpoint(server: ServerHandle, app_id: str, ep_id: str) -> dict[str, Any]:
    got = httpx.get(
        f"{server.url}/api/v1/app/{app_id}/endpoint/{ep_id}",
        headers={"authorization": f"Bearer {server.token}"},
    )
    assert got.status_code == 200
    return got.json()


def test_the_form_sets_and_clears_max_in_flight(server: ServerHandle, receiver: Receiver) -> None:
    app_id = server.svix().application.create(ApplicationIn(name="capped")).id
    portal = portal_client(server, app_id)
    new = portal.get("/portal/endpoints/new").text
    default = server.settings.endpoint_max_in_flight
    assert 'name="max_in_flight"' in new and f'placeholder="{default}"' in new  # the default
    form = {"csrf": csrf_of(new), "url": receiver.url + "/hook", "max_in_flight": "7"}
    created = portal.post("/portal/endpoints/new", data=form)
    assert created.status_code == 303
    ep_id = created.headers["location"].split("/")[-1].split("?")[0]
    assert _api_endpoint(server, app_id, ep_id)["maxInFlight"] == 7
    assert 'id="max-in-flight">7<' in portal.get(f"/portal/endpoints/{ep_id}").text
    edit = portal.get(f"/portal/endpoints/{ep_id}/edit").text
    assert f'placeholder="{default}" value="7"' in edit and "aria-invalid" not in edit

    # Empty is the server's default again.
    saved = portal.post(f"/portal/endpoints/{ep_id}/edit", data=form | {"max_in_flight": ""})
    assert saved.status_code == 303
    assert _api_endpoint(server, app_id, ep_id)["maxInFlight"] is None
    page = portal.get(f"/portal/endpoints/{ep_id}", headers={"accept-language": "pt-BR"}).text
    assert f'id="max-in-flight">Padrão do servidor ({default})<' in page

    # What the API refuses, the form refuses, naming the field; nothing is stored.
    for bad in ("0", "10001", "many", "2.5", "-3"):
        refused = portal.post(f"/portal/endpoints/{ep_id}/edit", data=form | {"max_in_flight": bad})
        assert refused.status_code == 422, bad
        assert "Max in flight is a whole number from 1 to 10000." in refused.text
        assert 'name="max_in_flight" aria-invalid="true"' in refused.text
        assert 'aria-describedby="mif-hint form-error"' in refused.text
        assert 'id="url" name="url" required' in refused.text  # only that field is marked
    spanish = portal.post(
        "/portal/endpoints/new",
        data=form | {"max_in_flight": "0"},
        headers={"accept-language": "es"},
    )
    assert spanish.status_code == 422
    assert "El máximo en curso es un número entero de 1 a 10000." in spanish.text
    assert _api_endpoint(server, app_id, ep_id)["maxInFlight"] is None
    assert len(server.svix().endpoint.list(app_id).data) == 1
