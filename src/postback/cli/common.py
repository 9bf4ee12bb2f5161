"""What the client commands share: the server's address and token (``client_command``
gives every command --url, --token and --json), error reporting, and output as Rich tables
for people or JSON for scripts."""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NamedTuple, NoReturn

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from postback.cli.client import DEFAULT_URL, Api, ApiError
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


class Client(Api):
    """The API as a command sees it: the server in --url, the token in --token. Without a
    token, the first request fails saying how to give one (a command's own checks of its
    arguments come first)."""

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        self._need_token()
        return super().request(method, path, body, **kwargs)

    def events(self, path: str, **params: Any) -> Iterator[tuple[str, str]]:
        self._need_token()
        return super().events(path, **params)

    def _need_token(self) -> None:
        if not self.token:
            fail("no token: set POSTBACK_TOKEN or pass --token")


class Out:
    """Where a command's answer goes: tables and lines for people or, with --json
    (``json`` true), the API's objects for scripts."""

    def __init__(self, as_json: bool) -> None:
        self.json = as_json

    def rows(self, rows: Sequence[dict], columns: Sequence[Column], *, title: str) -> None:
        show(rows, columns, title=title, as_json=self.json)

    def one(self, row: dict, columns: Sequence[Column], *, title: str) -> None:
        show_one(row, columns, title=title, as_json=self.json)

    def said(self, message: str, data: dict[str, Any]) -> None:
        said(message, data, as_json=self.json)


_SHARED = [
    inspect.Parameter("url", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT, annotation=UrlOpt),
    inspect.Parameter("token", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=TokenOpt),
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
]


def client_command(command: Callable[..., None]) -> Callable[..., None]:
    """A command of the HTTP API's client. ``command`` takes ``client`` (a ``Client``) and
    ``out`` (an ``Out``) as keywords; the command Typer sees takes --url, --token and
    --json in their place, after the command's own options, and reports an API error as its
    message with exit status 1. Typer reads the wrapper's signature, evaluated in the
    wrapped function's module (its options are names there)."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name not in ("client", "out")]

    @functools.wraps(command)
    def run(
        *, url: str = DEFAULT, token: str | None = None, as_json: bool = False, **kw: Any
    ) -> None:
        with reported():
            command(client=Client(url, token), out=Out(as_json), **kw)

    run.__signature__ = signature.replace(parameters=[*own, *_SHARED])  # type: ignore[attr-defined]
    return run


def progress_bar(label: str) -> Progress:
    """A bar with a count and the time taken, for the long operations (bulk send, recover)."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def read_json(text: str, what: str) -> Any:
    """JSON given on the command line (``--filter '{...}'``), or a clear error."""
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f"{what} is not JSON: {exc}")


def said(message: str, data: dict[str, Any], *, as_json: bool) -> None:
    """The outcome of a command that changes something and returns nothing (a 204): a line
    for people, the same facts as a JSON object for scripts."""
    if as_json:
        print_json(data)
    else:
        console.print(message, highlight=False, soft_wrap=True)


class Column(NamedTuple):
    name: str
    get: Callable[[dict], Any]
    ident: bool = False  # an id: printed whole on one line, whatever the width


def ident(name: str, get: Callable[[dict], Any]) -> Column:
    return Column(name, get, ident=True)


def show(rows: Sequence[dict], columns: Sequence[Column], *, title: str, as_json: bool) -> None:
    """Rows as a table (people) or as the API's JSON objects (scripts). No id, URL or other
    word is broken across lines, so each can be copied: when the terminal is too narrow for
    a table that keeps every word whole, each row is printed as ``name  value`` lines."""
    if as_json:
        print_json(list(rows))
        return
    cells = [[_cell(c.get(row)) for c in columns] for row in rows]
    table = Table(title=title)
    for c in columns:
        table.add_column(c.name, no_wrap=c.ident, overflow="ellipsis" if c.ident else "fold")
    for line in cells:
        table.add_row(*line)
    if _fits(table) and _ids_whole(table, columns, cells):
        console.print(table)
    else:
        _records(title, columns, cells)
    if not rows:
        console.print(f"no {title}")


def _fits(table: Table) -> bool:
    """Whether the table fits with each cell wrapped at spaces only (Rich's minimum width
    of a column is its longest word; of an id column, the whole id)."""
    unbounded = console.options.update_width(10_000)  # else the measure is capped at the width
    return Measurement.get(console, unbounded, table).minimum <= console.width


def _ids_whole(table: Table, columns: Sequence[Column], cells: list[list[str]]) -> bool:
    """Render the table at the terminal's width and check every id came out on one line."""
    probe = Console(file=io.StringIO(), width=console.width, color_system=None)
    probe.print(table)
    lines = probe.file.getvalue().splitlines()  # type: ignore[attr-defined]
    wanted = {v for line in cells for c, v in zip(columns, line, strict=True) if c.ident and v}
    return all(any(v in text for text in lines) for v in wanted)


def _records(title: str, columns: Sequence[Column], cells: list[list[str]]) -> None:
    """One block per row, one ``name: value`` line per column: plain print, so nothing is
    re-flowed and a long value wraps only where the terminal wraps it."""
    print(title)
    width = max(len(c.name) for c in columns)
    for line in cells:
        print()
        for c, value in zip(columns, line, strict=True):
            if value:
                print(f"  {c.name:<{width}}  {value}")


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
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
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
