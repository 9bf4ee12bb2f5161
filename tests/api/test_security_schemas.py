"""Event-type schemas are self-contained: a ``$ref`` outside the document is refused when
saved, and the schema library never fetches one, over HTTP or from a file (issue 18,
finding 2)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from postback.schemas import SchemaError, check_schemas, compile_schema
from tests.support.server import ServerHandle


class _Recorder(http.server.BaseHTTPRequestHandler):
    fetched: list[str] = []

    def do_GET(self) -> None:
        self.fetched.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("content-type", "application/schema+json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def schema_host() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that would serve a schema, and the paths fetched from it."""
    fetched: list[str] = []
    handler = type("Recorder", (_Recorder,), {"fetched": fetched})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", fetched
    server.shutdown()
    server.server_close()


def _post(server: ServerHandle, path: str, body: dict) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1{path}",
        json=body,
        headers={"authorization": f"Bearer {server.token}"},
        timeout=20,
    )


def test_remote_and_file_references_are_refused_at_save_and_never_fetched(
    server: ServerHandle, schema_host: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, fetched = schema_host
    existing = tmp_path / "exists.json"
    existing.write_text('{"type": "string"}')
    refs = [
        f"{base}/order.json",
        f"{base}/order.json#/$defs/x",
        existing.as_uri(),
        (tmp_path / "missing.json").as_uri(),
        "other.json",  # relative: resolved against the base URI, outside the document
    ]
    answers = []
    for n, ref in enumerate(refs):
        schema = {"type": "object", "properties": {"order": {"$ref": ref}}}
        answer = _post(server, "/event-type", {"name": f"t.{n}", "schemas": {"1": schema}})
        assert answer.status_code == 422, answer.text
        (detail,) = answer.json()["detail"]
        assert detail["loc"] == ["body", "schemas"]
        assert "/properties/order/$ref" in detail["msg"]
        answers.append(detail["msg"])
    # An existing file and a missing one are answered alike: no way to probe the disk.
    assert answers[2] == answers[3]
    time.sleep(0.2)
    assert fetched == []
    assert (
        httpx.get(
            f"{server.url}/api/v1/event-type", headers={"authorization": f"Bearer {server.token}"}
        ).json()["data"]
        == []
    )


def test_local_references_still_work(server: ServerHandle) -> None:
    schema = {
        "$defs": {"amount": {"type": "integer", "minimum": 1}},
        "type": "object",
        "properties": {"amount": {"$ref": "#/$defs/amount"}},
        "examples": [{"$ref": "https://example.com/not-a-reference-just-data", "amount": 2}],
    }
    created = _post(
        server, "/event-type", {"name": "paid", "schemas": {"1": schema}, "validatePayloads": True}
    )
    assert created.status_code == 201, created.text
    app = _post(server, "/app", {"name": "shop"}).json()["id"]
    bad = _post(server, f"/app/{app}/msg", {"eventType": "paid", "payload": {"amount": 0}})
    assert bad.status_code == 422
    assert (
        _post(
            server, f"/app/{app}/msg", {"eventType": "paid", "payload": {"amount": 3}}
        ).status_code
        == 202
    )


def test_a_schema_stored_before_the_rule_is_compiled_without_fetching(
    server: ServerHandle, schema_host: tuple[str, list[str]]
) -> None:
    base, fetched = schema_host
    legacy = {"type": "object", "properties": {"a": {"$ref": f"{base}/a.json"}}}
    server.call(
        lambda s: s.create_event_type(
            {"name": "old", "schemas": {"1": legacy}, "validate_payloads": True}
        )
    )
    app = _post(server, "/app", {"name": "shop"}).json()["id"]
    sent = _post(server, f"/app/{app}/msg", {"eventType": "old", "payload": {"a": 1}})
    assert sent.status_code == 202  # not enforced: it cannot be compiled without a fetch
    time.sleep(0.2)
    assert fetched == []


def test_the_compiler_refuses_every_fetch(schema_host: tuple[str, list[str]]) -> None:
    base, fetched = schema_host
    for ref in (f"{base}/x.json", "file:///etc/passwd"):
        with pytest.raises(ValueError):
            compile_schema({"$ref": ref})
    with pytest.raises(SchemaError):
        check_schemas({"1": {"$id": "https://example.com/root", "$ref": "other.json"}})
    time.sleep(0.1)
    assert fetched == []
