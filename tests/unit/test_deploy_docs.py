"""docs/deploy.md cannot drift from what it describes: every migration has its line in the
online-upgrade table, the metrics it says to watch exist, and the settings, commands, files
and links it names are real."""

from __future__ import annotations

import dataclasses
import re

import typer

from postback import cli
from postback.config import Settings
from tests.support.deployfiles import ROOT

GUIDE = (ROOT / "docs" / "deploy.md").read_text()
VERSIONS = ROOT / "src" / "postback" / "store" / "migrations" / "versions"


def test_every_migration_says_whether_it_is_safe_online() -> None:
    rows = dict(re.findall(r"^\| (\d{4}) [^|]*\|[^|]*\| ([^|]+) \|$", GUIDE, flags=re.M))
    revisions = {
        m.group(1)
        for path in VERSIONS.glob("*.py")
        if (m := re.search(r'^revision: str = "(\w+)"', path.read_text(), flags=re.M))
    }
    missing = revisions - set(rows)
    assert not missing, (
        f"docs/deploy.md's upgrade table has no row for migration(s) {sorted(missing)}: "
        "say what each locks and whether it can run while the old version serves"
    )
    assert all(rows[r].strip() for r in revisions)


def test_the_metrics_to_watch_exist() -> None:
    source = (ROOT / "src" / "postback" / "metrics.py").read_text()
    defined = set(re.findall(r'"(postback_[a-z_]+)"', source))
    named = set(re.findall(r"`(postback_[a-z_]+)", GUIDE))
    assert len(named) >= 10
    unknown = {n for n in named if n.removesuffix("_total") not in defined}
    assert not unknown, f"docs/deploy.md names metrics that do not exist: {sorted(unknown)}"


def test_settings_commands_files_and_links_exist() -> None:
    known = {f"POSTBACK_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    mentioned = set(re.findall(r"\bPOSTBACK_[A-Z_]+[A-Z]\b", GUIDE))
    assert mentioned - known == set()

    root = typer.main.get_command(cli.app)
    for command in set(re.findall(r"`postback ([a-z][a-z-]*)", GUIDE)):
        assert root.get_command(None, command) is not None, command  # type: ignore[attr-defined]

    for path in set(re.findall(r"\b((?:deploy|tests|src)/[\w./-]+\w)", GUIDE)):
        assert (ROOT / path).exists(), f"docs/deploy.md names {path}, which does not exist"
    for target in re.findall(r"\]\(([^)#:]+)\)", GUIDE):
        assert (ROOT / "docs" / target).exists(), f"docs/deploy.md links to missing {target}"
