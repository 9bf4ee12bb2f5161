"""``postback listen``: a local webhook receiver for developers. It verifies each request's
signature, pretty-prints it, and answers with the status asked for (``--status 500`` makes
postback retry)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group
from rich.json import JSON
from rich.panel import Panel
from rich.text import Text

if TYPE_CHECKING:  # loaded when listen runs, so the other commands start quickly
    from aiohttp import web


def _describe(request: web.Request, body: bytes, verdict: str, ok: bool) -> Panel:
    headers = request.headers
    msg_id = headers.get("webhook-id") or headers.get("svix-id") or "-"
    stamp = headers.get("webhook-timestamp") or headers.get("svix-timestamp") or ""
    sent = datetime.fromtimestamp(int(stamp), UTC).strftime("%H:%M:%S") if stamp.isdigit() else "-"
    head = Text.assemble(
        (f"{request.method} {request.path_qs}", "bold"),
        f"  id {msg_id}  sent {sent}  ",
        (verdict, "green" if ok else "red"),
    )
    try:
        shown: JSON | Text = JSON(json.dumps(json.loads(body)), indent=2)
    except ValueError:
        shown = Text(body.decode(errors="replace")[:4000])
    return Panel(Group(head, shown), title=request.headers.get("content-type", ""), expand=False)


def build(
    secret: str | None, status: int, console: Console, *, tolerance: float
) -> web.Application:
    from aiohttp import web

    from postback import receiver

    key = receiver.signing_key(secret) if secret else None  # a bad secret fails before listening

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        answer = status
        if key is None:
            verdict, ok = "not verified (no --secret)", True
        else:
            try:
                receiver.verify(body, request.headers, key, tolerance=tolerance)
                verdict, ok = "signature OK", True
            except receiver.WebhookVerificationError as exc:
                verdict, ok = f"REJECTED: {exc}", False
                answer = exc.status
        console.print(_describe(request, body, verdict, ok))
        console.print(f"answered {answer}", style="dim", highlight=False)
        sys.stdout.flush()
        return web.Response(status=answer, text="ok" if 200 <= answer <= 299 else verdict)

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def listen(
    port: Annotated[int, typer.Option(help="port to listen on")] = 9000,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    secret: Annotated[
        str | None,
        typer.Option(envvar="POSTBACK_LISTEN_SECRET", help="the endpoint's whsec_… secret"),
    ] = None,
    status: Annotated[
        int, typer.Option(min=100, max=599, help="status to answer verified webhooks with")
    ] = 200,
    tolerance: Annotated[float, typer.Option(help="seconds of clock skew allowed")] = 300,
) -> None:
    """Receive webhooks locally: verify, pretty-print, answer (Ctrl-C stops).

    A bad signature or timestamp is answered 401, missing headers 400."""
    console = Console()
    try:
        app = build(secret, status, console, tolerance=tolerance)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(
        f"listening on http://{host}:{port}/ (answering {status}"
        f"{', verifying signatures' if secret else ', NOT verifying: no --secret'})",
        highlight=False,
    )
    sys.stdout.flush()
    from aiohttp import web

    web.run_app(app, host=host, port=port, print=None, access_log=None)
