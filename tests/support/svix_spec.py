"""Svix's own OpenAPI document (tests/data/svix-openapi.json) as the conformance run and the
compatibility page read it: its operations, the repairs it needs to be run at all, and the
short list of places where it is wrong about Svix's own server.

``python tests/support/svix_spec.py --write docs/svix-compatibility.md`` rewrites the page's table
of operations; tests/api/test_svix_compat_doc.py fails when the page and the document differ."""

from __future__ import annotations

import copy
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).resolve().parents[1] / "data" / "svix-openapi.json"
SOURCE_COMMIT = "4fc0cfb8b426c87ef7e2b937e7d896a71d456a47"
METHODS = ("get", "head", "post", "put", "patch", "delete")
TABLE_START = "<!-- svix-operations:start (python tests/support/svix_spec.py --write ...) -->"
TABLE_END = "<!-- svix-operations:end -->"


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str
    operation_id: str | None

    @property
    def label(self) -> str:
        """As schemathesis names an operation."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Excused:
    """A status Svix's server answers but its document leaves out of one operation."""

    check: str
    status: int
    evidence: str


# Where the document is wrong about Svix's own server (each read in svix/svix-webhooks at
# SOURCE_COMMIT, server/svix-server/src/): the run accepts exactly this status for exactly this
# (operation, check); any other status still fails it.
EXCUSED: dict[str, Excused] = {
    "DELETE /api/v1/app/{app_id}/msg/{msg_id}/content": Excused(
        "status_code_conformance",
        204,
        "v1/endpoints/message.rs, expunge_message_content: returns "
        "Ok(StatusCode::NO_CONTENT); a bare StatusCode adds no response to the generated "
        "document, so it lists no success at all",
    ),
    "DELETE /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content": Excused(
        "status_code_conformance",
        204,
        "v1/endpoints/attempt.rs, expunge_attempt_content: returns "
        "Ok(StatusCode::NO_CONTENT), likewise undocumented",
    ),
    "HEAD /api/v1/health": Excused(
        "status_code_conformance",
        204,
        "v1/endpoints/health.rs, router: HEAD runs the same handler as GET "
        "(.head_with(health, health_operation)), but only GET gets the documented "
        "op.response::<204, ()>(), so HEAD lists no success; postback answers HEAD as it "
        "answers GET, 204",
    ),
}


def load_spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def operations(spec: dict[str, Any] | None = None) -> list[Operation]:
    spec = spec or load_spec()
    return [
        Operation(method.upper(), path, item[method].get("operationId"))
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    ]


def missing_path_parameters(spec: dict[str, Any]) -> list[tuple[Operation, str]]:
    """Path parameters an operation's path names but the operation never declares."""
    missing = []
    for op in operations(spec):
        item = spec["paths"][op.path]
        declared = {
            p["name"]
            for p in [*item.get("parameters", ()), *item[op.method.lower()].get("parameters", ())]
            if p.get("in") == "path"
        }
        missing += [(op, n) for n in re.findall(r"{(\w+)}", op.path) if n not in declared]
    return missing


# A message's destinations may be canceled (status 4, "canceled": its payload filter said
# no, or it is one of the endpoints the message did not go to, with postback's reason). The
# Svix SDKs know that status (svix 2.9.1 for Python: MessageStatus.CANCELED = 4 and
# MessageStatusText.CANCELED; the JavaScript SDKs 1.x and 2.x: MessageStatus.Canceled = 4),
# as Svix's cloud API answers it; the open-source document at SOURCE_COMMIT stops at 3. Only
# that listing's items are widened (docs/svix-compatibility.md).
CANCELED_IN = "MessageEndpointOut"


def repaired(spec: dict[str, Any]) -> dict[str, Any]:
    """The document with each undeclared path parameter declared as the document declares it
    elsewhere: without it schemathesis cannot build those operations' URLs (four operations
    at SOURCE_COMMIT leave out ``app_id``); and with the canceled status in a message's
    destinations (``CANCELED_IN``)."""
    fixed = copy.deepcopy(spec)
    for op, name in missing_path_parameters(spec):
        declaration = _first_declaration(spec, name)
        target = fixed["paths"][op.path][op.method.lower()]
        target.setdefault("parameters", []).append(declaration)
    schemas = fixed["components"]["schemas"]
    status = copy.deepcopy(schemas["MessageStatus"])
    status["enum"] = [*status["enum"], 4]
    if "x-enum-varnames" in status:
        status["x-enum-varnames"] = [*status["x-enum-varnames"], "Canceled"]
    text = copy.deepcopy(schemas["MessageStatusText"])
    text["enum"] = [*text["enum"], "canceled"]
    schemas[CANCELED_IN]["properties"] |= {"status": status, "statusText": text}
    return fixed


def _first_declaration(spec: dict[str, Any], name: str) -> dict[str, Any]:
    for item in spec["paths"].values():
        for method in METHODS:
            for p in item.get(method, {}).get("parameters", ()):
                if p.get("in") == "path" and p["name"] == name:
                    return copy.deepcopy(p)
    raise LookupError(f"no operation declares the path parameter {name!r}")


def served(routes: list[tuple[str, str]], op: Operation) -> bool:
    """Whether ``(METHOD, path template)`` pairs of an app answer this operation."""
    shape = re.sub(r"{\w+}", "{}", op.path)
    return any(m == op.method and re.sub(r"{\w+}", "{}", p).rstrip("/") == shape for m, p in routes)


def operations_table(spec: dict[str, Any], notes: dict[str, str], served_by: Any) -> str:
    """The page's table: every operation of the document, served or not, with its note."""
    lines = [
        TABLE_START,
        "| method | path | operationId | served | difference |",
        "|---|---|---|---|---|",
    ]
    for op in operations(spec):
        yes = "yes" if served_by(op) else "**no**"
        lines.append(
            f"| {op.method} | `{op.path}` | `{op.operation_id or '(none)'}` | {yes} "
            f"| {notes.get(op.label, '')} |"
        )
    lines.append(TABLE_END)
    return "\n".join(lines)


def table_of(page: str) -> str:
    return page[page.index(TABLE_START) : page.index(TABLE_END) + len(TABLE_END)]


def notes_of(page: str) -> dict[str, str]:
    """The difference column of the page's table, by operation label."""
    notes = {}
    for line in table_of(page).splitlines()[3:-1]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5:
            notes[f"{cells[0]} {cells[1].strip('`')}"] = "|".join(cells[4:]).strip()
    return notes


def expected_page(page: str, routes: list[tuple[str, str]]) -> str:
    """``page`` with its table made from the document and the routes, its notes kept."""
    table = operations_table(load_spec(), notes_of(page), lambda op: served(routes, op))
    return page.replace(table_of(page), table)


def app_routes() -> list[tuple[str, str]]:
    """(METHOD, path) of every route postback's API documents (its own /openapi.json, made
    from the router table, so a route cannot be served and missing here)."""
    from postback.api.app import create_app
    from postback.config import Settings

    paths = create_app(Settings(database_url="sqlite:///:memory:")).openapi()["paths"]
    return [(m.upper(), path) for path, item in paths.items() for m in item if m in METHODS]


if __name__ == "__main__":
    target = Path(sys.argv[sys.argv.index("--write") + 1])
    target.write_text(expected_page(target.read_text(), app_routes()))
