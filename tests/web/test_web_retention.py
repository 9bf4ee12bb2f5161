"""The dashboard's storage and retention panel: the last pass the worker ran and the
tables' rows, sizes and oldest records it measured."""

from __future__ import annotations

import re

from postback.store.store import Store
from tests.support.polling import eventually
from tests.support.server import ServerHandle
from tests.web import test_web_http
from tests.web.test_web_http import _app, dashboard_client

web_server = test_web_http.web_server


def test_the_dashboard_shows_the_last_retention_pass_and_the_tables(
    web_server: ServerHandle,
) -> None:
    from svix.api import MessageIn

    app_id = _app(web_server, "kept")
    web_server.svix().message.create(app_id, MessageIn(event_type="x.y", payload={}))
    dash = dashboard_client(web_server)
    assert "No retention pass has run yet." in dash.get("/dashboard/").text

    async def one_pass(store: Store) -> None:  # what the worker's housekeeping runs
        await store.run_retention(web_server.settings.retention_period)

    web_server.call(one_pass)
    page = eventually(
        lambda: "Last retention pass" in (text := dash.get("/dashboard/").text) and text
    )
    assert re.search(r"removed 0 messages, 0 deliveries, 0 attempts", page)
    for table in ("messages", "deliveries", "attempts"):
        assert f"<code>{table}</code>" in page
    rows = re.findall(
        r'<tr><td data-label="Table"><code>(\w+)</code></td><td data-label="Rows">'
        r'(\d+)</td><td data-label="Size">([^<]+)</td>',
        page,
    )
    assert [r[0] for r in rows] == ["messages", "deliveries", "attempts"]
    assert all(r[2].endswith(("B", "KiB", "MiB")) for r in rows), rows
    spanish = dash.get("/dashboard/", headers={"accept-language": "es"}).text
    assert "Almacenamiento y retención" in spanish and "Registro más antiguo" in spanish
