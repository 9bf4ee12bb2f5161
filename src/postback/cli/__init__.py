"""The ``postback`` command, assembled from its parts:

- server.py: ``serve``, ``api``, ``worker``, ``config-doc`` (config_doc.py writes the reference)
- database.py: ``migrate``, ``check``, ``token`` (they open the database themselves)
- applications.py, event_types.py, endpoints.py, endpoint_tools.py: the resources, over the
  HTTP API (client.py, a small urllib client; common.py: options, errors, tables and JSON)
- operational.py: the same endpoint commands for the operator's operational webhooks
- tasks.py: an ordered endpoint's key heads, replay-missing, the usage statistics
- messages.py, attempts.py: sending, the message log, attempts, ``tail``
- listen.py: ``listen``, a local receiver that verifies signatures
- connection.py: ``health`` and ``logout``

The client commands load no server code, so they start quickly."""

from __future__ import annotations

import typer

from postback.cli import (
    applications,
    attempts,
    connection,
    database,
    endpoint_tools,
    endpoints,
    event_types,
    listen,
    messages,
    operational,
    server,
    tasks,
)
from postback.cli.server import ensure_operator_token

__all__ = ["app", "ensure_operator_token", "main"]

app = typer.Typer(help="postback: self-hosted webhook delivery.", no_args_is_help=True)

app.command()(server.serve)
app.command()(server.api)
app.command()(server.worker)
app.command()(database.migrate)
app.command()(database.check)
app.add_typer(database.token_app, name="token")
app.add_typer(applications.app_cli, name="app")
app.add_typer(event_types.event_type_cli, name="event-type")
app.add_typer(endpoints.endpoint_cli, name="endpoint")
app.add_typer(operational.operational_cli, name="operational-endpoint")
app.add_typer(endpoint_tools.task_cli, name="task")
app.add_typer(tasks.stats_cli, name="stats")
app.command()(messages.send)
app.add_typer(messages.message_cli, name="message")
app.command()(messages.events)
app.command()(attempts.attempts)
app.add_typer(attempts.attempt_cli, name="attempt")
app.command()(attempts.resend)
app.command()(attempts.tail)
app.command()(listen.listen)
app.command()(connection.health)
app.command()(connection.logout)
app.command("config-doc")(server.config_doc_command)


def main() -> None:
    app()
