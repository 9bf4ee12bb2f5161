"""``postback operational-endpoint``: the operator's own endpoints, which receive postback's
operational webhooks (an endpoint disabled, a message attempt exhausted, ...).

They are the endpoint commands without the application: the same functions, called for
the operational-webhook routes (/api/v1/operational-webhook/endpoint) instead of an app's."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import typer

from postback.cli import endpoint_tools, endpoints, tasks
from postback.cli.endpoints import OPERATIONAL

operational_cli = typer.Typer(
    help="Your own endpoints for postback's operational webhooks.", no_args_is_help=True
)
secret_cli = typer.Typer(help="An operational endpoint's signing secret.", no_args_is_help=True)
headers_cli = typer.Typer(help="Headers sent with every operational webhook to an endpoint.")
ordering_cli = typer.Typer(
    help="An ordered operational endpoint's heads: what its later webhooks wait for.",
    no_args_is_help=True,
)
operational_cli.add_typer(secret_cli, name="secret")
operational_cli.add_typer(headers_cli, name="headers")
operational_cli.add_typer(ordering_cli, name="ordering")


def without_app(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with its ``app`` argument taken away and bound to the operational
    endpoints. Typer reads the wrapper's signature, evaluated here in the wrapped
    function's module (its options are names there)."""
    signature = inspect.signature(command, eval_str=True)

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        command(app=OPERATIONAL, **kwargs)

    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for name, p in signature.parameters.items() if name != "app"]
    )
    return run


for name, command, summary in [
    ("list", endpoints.endpoint_list, "List your operational-webhook endpoints."),
    ("create", endpoints.endpoint_create, "Add one; prints its signing secret."),
    ("get", endpoints.endpoint_get, "Show one."),
    ("update", endpoints.endpoint_update, "Change one (what is not given stays)."),
    ("delete", endpoints.endpoint_delete, "Delete one."),
    ("disable", endpoints.endpoint_disable, "Stop sending to it; what is due waits."),
    ("enable", endpoints.endpoint_enable, "Send to it again."),
]:
    operational_cli.command(name, help=summary)(without_app(command))
secret_cli.command("show")(without_app(endpoint_tools.secret_show))
secret_cli.command("rotate")(without_app(endpoint_tools.secret_rotate))
headers_cli.command("show")(without_app(endpoint_tools.headers_show))
headers_cli.command("set")(without_app(endpoint_tools.headers_set))
ordering_cli.command("list")(without_app(tasks.ordering_list))
ordering_cli.command("retry")(without_app(tasks.ordering_retry))
ordering_cli.command("skip")(without_app(tasks.ordering_skip))
