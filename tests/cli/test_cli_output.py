"""What every command owes its reader: ids whole on one line at 80 columns (so they can be
copied), ``--json`` for scripts, and a test here that runs it against a live server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from postback import cli
from tests.support.cli import ok_json, pb
from tests.support.polling import eventually
from tests.support.receivers import Receiver, ok
from tests.support.server import ServerHandle

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
# Commands that run a service or a receiver, or write a file: no object to print as JSON.
NO_JSON = {"serve", "api", "worker", "listen", "config-doc"}
ID = re.compile(r"\b(?:app|ep|msg|atmpt)_[0-9A-Za-z]+\b")


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every runnable command's words (groups are recognised by their subcommands: typer
    carries its own click, so isinstance against ours does not hold)."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


def _root() -> Any:
    return typer.main.get_command(cli.app)


def _command(path: tuple[str, ...]) -> Any:
    command = _root()
    for name in path:
        command = command.commands[name]
    return command


def test_every_command_but_the_services_has_json() -> None:
    missing = [
        " ".join(path)
        for path in _commands(_root())
        if path[-1] not in NO_JSON and not any("--json" in p.opts for p in _command(path).params)
    ]
    assert missing == []


def test_every_command_is_run_by_a_test() -> None:
    """Each command's words appear, quoted and in order, in a test module (the ones that
    run the real `postback`: the test_cli modules, e2e/, test_feed_busy.py for check)."""
    text = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py") if p != Path(__file__))
    untested = []
    for path in _commands(_root()):
        words = r",\s*".join(f'"{re.escape(w)}"' for w in path)
        if not re.search(words, text):
            untested.append(" ".join(path))
    assert untested == []


def test_every_command_is_in_the_cli_reference() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text()
    missing = [
        " ".join(path)
        for path in _commands(_root())
        if f"postback {' '.join(path)}" not in reference
        and not (path[0] == "operational-endpoint" and f"`{' '.join(path[1:])}`" in reference)
    ]
    assert missing == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ids_are_never_broken_at_80_columns(
    server: ServerHandle, app_id: str, receiver: Receiver
) -> None:
    ep = ok_json(server, "endpoint", "create", app_id, receiver.route("/w", ok()))["id"]
    msg = ok_json(server, "send", app_id, "order.paid", "{}")["id"]
    attempt = eventually(lambda: ok_json(server, "attempts", app_id, "--msg", msg))[0]["id"]
    wanted = {app_id, ep, msg, attempt}
    for args in [
        ("app", "list"),
        ("app", "get", app_id),
        ("endpoint", "list", app_id),
        ("message", "list", app_id),
        ("message", "endpoints", app_id, msg),
        ("attempts", app_id, "--msg", msg),
        ("attempts", app_id, "--endpoint", ep),
        ("attempt", "get", app_id, msg, attempt),
        ("endpoint", "messages", app_id, ep),
    ]:
        done = pb(server, *args, COLUMNS="80")
        assert done.returncode == 0, (args, done.stderr)
        lines = done.stdout.splitlines()
        assert all(len(line) <= 80 for line in lines), (args, done.stdout)
        shown = {m for line in lines for m in ID.findall(line)}
        # Every id printed is a whole one, and what the command is about is among them.
        assert shown <= wanted | {
            a["id"] for a in ok_json(server, "attempts", app_id, "--msg", msg)
        }, (
            args,
            done.stdout,
        )
        assert shown & wanted, (args, done.stdout)
    # A wide terminal still gets the table.
    wide = pb(server, "attempts", app_id, "--msg", msg, COLUMNS="250")
    assert "┃" in wide.stdout or "│" in wide.stdout


def test_json_output_is_never_wrapped(tmp_path: Path) -> None:
    """--json is for scripts: one JSON document, whatever the terminal's width."""
    long_name = "n" * 150
    done = pb(
        None,
        "token",
        "list",
        "--json",
        "--database-url",
        f"sqlite:///{tmp_path}/x.db",
        COLUMNS="40",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    made = pb(
        None,
        "token",
        "create",
        "--name",
        long_name,
        "--json",
        "--database-url",
        f"sqlite:///{tmp_path}/x.db",
        COLUMNS="40",
    )
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["name"] == long_name and created["token"].startswith("pb_")
    [row] = json.loads(
        pb(None, "token", "list", "--json", "--database-url", f"sqlite:///{tmp_path}/x.db").stdout
    )
    assert row["id"] == created["id"]
    table = pb(None, "token", "list", "--database-url", f"sqlite:///{tmp_path}/x.db", COLUMNS="80")
    assert created["id"] in table.stdout
    revoked = pb(
        None,
        "token",
        "revoke",
        created["id"],
        "--json",
        "--database-url",
        f"sqlite:///{tmp_path}/x.db",
    )
    assert json.loads(revoked.stdout) == {"id": created["id"], "revoked": True}
    migrated = pb(None, "migrate", "--json", "--database-url", f"sqlite:///{tmp_path}/x.db")
    assert json.loads(migrated.stdout) == {"migrated": True}
