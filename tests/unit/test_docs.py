"""The documentation cannot drift: the configuration reference is generated from Settings, and
the commands, settings, links and Python code the guides show must exist."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from postback import cli
from postback.cli import config_doc
from postback.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDES = ["quickstart.md", "receiving.md", "configuration.md", "event-catalog.md", "cli.md"]
# Variables that are not Settings: the CLI client's, listen's, and the test suite's own.
NOT_SETTINGS = {"POSTBACK_URL", "POSTBACK_TOKEN", "POSTBACK_LISTEN_SECRET"}


def test_configuration_reference_is_current() -> None:
    written = (DOCS / "configuration.md").read_text()
    assert written == config_doc.render(), "docs/configuration.md is stale: run postback config-doc"


def test_every_setting_is_in_the_configuration_reference() -> None:
    written = (DOCS / "configuration.md").read_text()
    missing = [
        f.name
        for f in dataclasses.fields(Settings)
        if f"`POSTBACK_{f.name.upper()}`" not in written
    ]
    assert missing == []
    assert all(f.metadata.get("help") for f in dataclasses.fields(Settings)), (
        "a setting has no help"
    )


def test_config_doc_command_writes_the_reference(tmp_path: Path) -> None:
    target = tmp_path / "configuration.md"
    postback = str(Path(sys.executable).with_name("postback"))
    first = subprocess.run(
        [postback, "config-doc", str(target)], capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0 and "written" in first.stdout
    assert target.read_text() == config_doc.render()
    again = subprocess.run(
        [postback, "config-doc", str(target)], capture_output=True, text=True, timeout=60
    )
    assert "up to date" in again.stdout


def _docs_text() -> dict[str, str]:
    texts = {name: (DOCS / name).read_text() for name in GUIDES}
    texts["README.md"] = (ROOT / "README.md").read_text()
    return texts


def test_documented_variables_exist() -> None:
    known = {f"POSTBACK_{f.name.upper()}" for f in dataclasses.fields(Settings)} | NOT_SETTINGS
    for name, text in _docs_text().items():
        mentioned = set(re.findall(r"\bPOSTBACK_[A-Z_]+[A-Z]\b", text))
        unknown = {v for v in mentioned - known if not v.startswith("POSTBACK_TEST_")}
        assert not unknown, f"{name} mentions settings that do not exist: {sorted(unknown)}"


def _code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_python_examples_compile() -> None:
    blocks = [
        (name, block)
        for name, text in _docs_text().items()
        for block in _code_blocks(text, "python")
    ]
    assert len(blocks) >= 5
    for name, block in blocks:
        compile(block, name, "exec")


def _subcommand(command: Any, word: str) -> Any:
    """The named subcommand of a command group, or None (typer carries its own click)."""
    if not hasattr(command, "list_commands"):
        return None
    return command.get_command(None, word)


@pytest.mark.parametrize(
    "name", ["quickstart.md", "receiving.md", "event-catalog.md", "cli.md", "README.md"]
)
def test_documented_commands_exist(name: str) -> None:
    root = typer.main.get_command(cli.app)
    text = _docs_text()[name]
    shown = [
        line.split()
        for block in _code_blocks(text, "sh")
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip().startswith("postback ")
    ]
    shown += [m.split() for m in re.findall(r"`(postback [a-z][a-z -]*)", text)]
    assert shown, f"{name} shows no postback command"
    for words in shown:
        command = root
        for word in words[1:]:
            if not hasattr(command, "list_commands") or word.startswith(("-", "<")):
                break
            sub = _subcommand(command, word)
            assert sub is not None, f"{name}: {' '.join(words)!r}: no command {word!r}"
            command = sub


def test_links_between_docs_resolve() -> None:
    for name, text in _docs_text().items():
        base = ROOT if name == "README.md" else DOCS
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", text):
            assert (base / target).exists(), f"{name} links to missing {target}"
