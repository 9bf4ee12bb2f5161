"""What the client commands share: the server's address and token, error reporting, and
output as Rich tables for people or JSON for scripts."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from postback.apiclient import DEFAULT_URL, Api, ApiError
from postback.config import SettingsError, parse_duration

console = Console(highlight=False)  # output is data: no guessing colours
errors = Console(stderr=True, highlight=False)

UrlOpt = Annotated[
    str, typer.Option("--url", envvar="POSTBACK_URL", help="the postback server's address")
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="POSTBACK_TOKEN", help="an operator (or app-portal) token"),
]
AppArg = Annotated[str, typer.Argument(help="application id or uid")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
LimitOpt = Annotated[int, typer.Option(min=1, help="at most this many rows")]
DEFAULT = DEFAULT_URL


def api(url: str, token: str | None) -> Api:
    if not token:
        fail("no token: set POSTBACK_TOKEN or pass --token")
    return Api(url, token)


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """An API error becomes its message on stderr and exit status 1."""
    try:
        yield
    except ApiError as exc:
        where = f" ({exc.status})" if exc.status else ""
        fail(f"{exc.detail}{where}")


def progress_bar(label: str) -> Progress:
    """A bar with a count and the time taken, for the long operations (bulk send, recover)."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


Column = tuple[str, Callable[[dict], Any]]


def show(rows: Sequence[dict], columns: Sequence[Column], *, title: str, as_json: bool) -> None:
    """Rows as a table (people) or as the API's JSON objects (scripts)."""
    if as_json:
        print_json(list(rows))
        return
    table = Table(title=title)
    for name, _ in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(get(row)) for _, get in columns))
    console.print(table)
    if not rows:
        console.print(f"no {title}")


def show_one(row: dict, columns: Sequence[Column], *, title: str, as_json: bool) -> None:
    """One object: the API's JSON object for scripts, a one-row table for people."""
    if as_json:
        print_json(row)
    else:
        show([row], columns, title=title, as_json=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def when(text: str) -> str:
    """``2h``/``30m``/``7d`` (that long ago) or an ISO 8601 time, as an RFC 3339 string."""
    try:
        return (datetime.now(UTC) - timedelta(seconds=parse_duration(text))).isoformat()
    except SettingsError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"not a duration or an ISO time: {text!r}")
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def short_time(text: str | None) -> str:
    """RFC 3339 from the API as ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    if not text:
        return ""
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
