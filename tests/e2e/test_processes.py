"""The real commands as separate processes: `postback serve`, `postback api` + `postback worker`,
`postback migrate`."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from svix.api import ApplicationIn, EndpointIn, MessageIn, Svix, SvixOptions

from postback.store.migrate import current_revision, head_revision
from postback.store.store import Store
from tests.support.procs import POSTBACK, Proc, env_for, free_port, wait_healthy
from tests.support.receivers import Receiver, ok
from tests.support.server import run_sync


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _send_one(url: str, token: str, hook: str) -> str:
    svix = Svix(token, SvixOptions(server_url=url, retry_schedule=[], timeout=10))
    app = svix.application.create(ApplicationIn(name="shop"))
    svix.endpoint.create(app.id, EndpointIn(url=hook))
    return svix.message.create(app.id, MessageIn(event_type="purchase.approved", payload={})).id


def test_serve_on_sqlite_prints_a_token_and_delivers(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    env = env_for("sqlite:///./postback.db", POSTBACK_PORT=str(port))
    proc = Proc(["serve"], env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        token = next(
            line.strip() for line in proc.output().splitlines() if line.strip().startswith("pb_")
        )
        msg_id = _send_one(url, token, receiver.route("/hook", ok()))
        (got,) = receiver.wait_for(1, "/hook")
        assert got.headers["webhook-id"] == msg_id
    finally:
        code = proc.stop()
    assert code == 0, proc.output()
    assert (tmp_path / "postback.db").exists()
    # The embedded default made its own key for endpoint secrets, private to its owner.
    key_file = tmp_path / "postback.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "postback.key" in proc.output()
    # The token is kept (hashed): a restart prints none and the old one still works.
    proc = Proc(["serve"], env, tmp_path)
    try:
        wait_healthy(url, proc)
        assert "pb_" not in proc.output()
        r = httpx.get(url + "/api/v1/app", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200 and len(r.json()["data"]) == 1
    finally:
        assert proc.stop() == 0


def test_api_and_worker_processes_share_the_database(
    database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    token = "pb_e2e_token"
    env = env_for(database_url, POSTBACK_PORT=str(port), POSTBACK_ADMIN_TOKEN=token)
    api = Proc(["api"], env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, api)
        msg_id = _send_one(url, token, receiver.route("/hook", ok()))
        time.sleep(0.5)
        assert receiver.received("/hook") == []  # the API alone does not deliver
        worker = Proc(["worker"], env, tmp_path)
        try:
            (got,) = receiver.wait_for(1, "/hook", timeout=60)
            assert got.headers["webhook-id"] == msg_id
        finally:
            assert worker.stop() == 0, worker.output()
    finally:
        assert api.stop() == 0, api.output()


def test_migrate_command(empty_database_url: str, tmp_path: Path) -> None:
    database_url = empty_database_url  # `postback migrate` runs every migration for real
    done = subprocess.run(
        [*POSTBACK, "migrate"], env=env_for(database_url), cwd=tmp_path, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()

    async def revision() -> str | None:
        store = Store.connect(database_url)
        try:
            return await current_revision(store.engine)
        finally:
            await store.close()

    assert run_sync(revision()) == head_revision()


def test_bad_settings_fail_with_a_clear_message(tmp_path: Path) -> None:
    env = env_for("sqlite:///x.db", POSTBACK_RETRY_SCHEDULE="5s,soon")
    done = subprocess.run([*POSTBACK, "migrate"], env=env, cwd=tmp_path, capture_output=True)
    assert done.returncode == 2
    assert b"POSTBACK_RETRY_SCHEDULE" in done.stdout + done.stderr


def test_check_reports_the_queue(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url)
    subprocess.run([*POSTBACK, "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True)
    done = subprocess.run(
        [*POSTBACK, "check", "--json"], env=env, cwd=tmp_path, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["healthy"] is True and report["due"] == 0 and report["stuck"] == 0


def test_postgres_without_a_secret_key_refuses_to_start(pg_admin_url: str, tmp_path: Path) -> None:
    env = env_for(pg_admin_url)
    del env["POSTBACK_SECRET_KEY"]
    done = subprocess.run([*POSTBACK, "worker"], env=env, cwd=tmp_path, capture_output=True)
    assert done.returncode == 2
    assert b"POSTBACK_SECRET_KEY is required" in done.stdout + done.stderr


def test_token_commands(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url)

    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*POSTBACK, *args], env=env, cwd=tmp_path, capture_output=True)

    created = cli("token", "create", "--name", "deploy-bot")
    assert created.returncode == 0, created.stderr.decode()
    token = created.stdout.decode().strip().splitlines()[-1]
    assert token.startswith("pb_")
    listed = json.loads(cli("token", "list", "--json").stdout)
    (row,) = [r for r in listed if r["name"] == "deploy-bot"]
    assert token not in json.dumps(listed)  # only ids and names, never the token

    async def valid() -> bool:
        store = Store.connect(database_url)
        try:
            return await store.operator_token_valid(token)
        finally:
            await store.close()

    assert run_sync(valid())
    assert cli("token", "revoke", row["id"]).returncode == 0
    assert not run_sync(valid())
    again = cli("token", "revoke", row["id"])
    assert again.returncode == 1 and b"no active operator token" in again.stdout
