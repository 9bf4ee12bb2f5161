"""docs/svix-compatibility.md stays true: its table lists every operation of Svix's document
(tests/data/svix-openapi.json) with whether postback serves it, its exceptions are exactly
the ones the conformance run accepts, and it names the opt-in headers the code reads."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from postback.api import optins
from tests.support.svix_spec import (
    EXCUSED,
    SOURCE_COMMIT,
    SPEC_PATH,
    app_routes,
    expected_page,
    load_spec,
    operations,
    served,
)

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "svix-compatibility.md"


def test_the_table_lists_every_operation_of_the_document_as_served_or_not() -> None:
    page = PAGE.read_text()
    routes = app_routes()
    assert page == expected_page(page, routes), (
        "docs/svix-compatibility.md is out of date: "
        "python tests/support/svix_spec.py --write docs/svix-compatibility.md"
    )
    every = operations(load_spec())
    assert len(every) == 43
    assert [op.label for op in every if not served(routes, op)] == []


def test_the_exceptions_are_exactly_those_the_run_accepts() -> None:
    page = PAGE.read_text()
    section = page[page.index("<!-- svix-exceptions:start -->") : page.index("svix-exceptions:end")]
    flat = " ".join(section.split())
    bullets = re.findall(r"- `([A-Z]+ [^`]+)` \(`([^`]+)`\), `(\w+)`, (\d{3})", flat)
    by_label = {op.label: op for op in operations()}
    assert {b[0] for b in bullets} == set(EXCUSED)
    for label, operation_id, check, status in bullets:
        assert by_label[label].operation_id == operation_id
        assert (check, int(status)) == (EXCUSED[label].check, EXCUSED[label].status)
    # Each names the Svix server code that shows it, as the run's table does.
    for excused in EXCUSED.values():
        evidence_file = excused.evidence.split(",")[0]
        assert evidence_file in flat, evidence_file


def test_the_page_names_the_opt_ins_and_the_document_it_measures() -> None:
    page = PAGE.read_text()
    header = optins.RETURN_EXISTING.title()  # Postback-Return-Existing
    assert f"`{header}: true`" in page
    assert f"`Prefer: {optins.RETURN_REPRESENTATION}`" in page
    assert f"`User-Agent: {optins.SVIX_SDK_AGENT}…`" in page
    readme = (SPEC_PATH.parent / "README.md").read_text()
    assert SOURCE_COMMIT in page and SOURCE_COMMIT in readme
    assert hashlib.sha256(SPEC_PATH.read_bytes()).hexdigest() in readme
    assert "MIT License" in readme and "Copyright (c) 2021 Svix" in readme
