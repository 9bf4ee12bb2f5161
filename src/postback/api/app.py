"""The FastAPI application: routers, errors, limits, and (for `serve`) the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postback import __version__, metrics, tracing
from postback.api import docs as api_docs
from postback.api import errors
from postback.api.cors import Cors
from postback.api.deps import ANY_TOKEN, APP_SCOPED, OPERATOR, StoreDep
from postback.api.idempotency import Idempotency
from postback.api.routes import (
    applications,
    attempts,
    auth,
    background_tasks,
    endpoints,
    event_types,
    events,
    messages,
    statistics,
    unsupported,
)
from postback.api.routing import SlashRouter
from postback.api.wire.common import ErrorOut
from postback.config import Settings
from postback.schemas import SchemaCatalog
from postback.store.secretbox import secret_box_for
from postback.store.store import Store
from postback.web import install as install_web

health = SlashRouter(prefix="/api/v1/health", tags=["Health"])


@health.get("/", status_code=204)
async def get_health(store: StoreDep) -> Response:
    """204 when the database answers (503 when it does not)."""
    await store.ping()
    return Response(status_code=204)


@health.get("/ping", status_code=204)
async def ping() -> Response:
    """204 while the process serves requests; asks nothing of the database."""
    return Response(status_code=204)


# HEAD answers as GET does (Svix's server runs the same handlers for both).
health.add_api_route("/", get_health, methods=["HEAD"], status_code=204, operation_id="head_health")
health.add_api_route("/ping", ping, methods=["HEAD"], status_code=204, operation_id="head_ping")


class BodyLimit:
    """413 for a body over the limit, before it is read whole (chunked bodies included).

    The limit is ``POSTBACK_MAX_PAYLOAD_BYTES`` plus room for the JSON envelope around a
    payload of that size; the payload itself is held to the setting by its route (422)."""

    ENVELOPE = 64 * 1024

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.payload_bytes = max_bytes
        self.max_bytes = max_bytes + self.ENVELOPE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        # NUL cannot be stored or compared as text by the databases: refuse it at the edge.
        if b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", ""):
            response = errors.validation_error(["query"], "the NUL character is not allowed")
            await send(
                {"type": "http.response.start", "status": 422, "headers": response.raw_headers}
            )
            await send({"type": "http.response.body", "body": response.body})
            return
        seen = 0
        too_large = False
        started = False

        async def limited() -> Message:
            nonlocal seen, too_large
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                too_large = True
                raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            # Whoever caught _TooLarge on the way (FastAPI turns any error while reading a
            # body into a 400) answers with its own response: ours replaces it.
            nonlocal started
            if too_large:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._reject(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        response = errors.error(
            413,
            f"request body larger than {self.max_bytes} bytes (POSTBACK_MAX_PAYLOAD_BYTES, "
            f"{self.payload_bytes}, plus {self.ENVELOPE} for the request around the payload)",
        )
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class _TooLarge(Exception):
    pass


ERRORS = {
    400: "Bad request",
    401: "Missing, invalid, revoked or expired token",
    403: "The token may not do this",
    404: "No such resource (or not this token's application)",
    409: "A unique field is already in use",
    413: "Request body too large",
    503: "The database is unavailable; retry",
}


log = logging.getLogger("postback.api")
PARTITIONS_EVERY = 60.0  # seconds between an API process's checks of the time partitions


async def keep_partitions(store: Store, width: float, every: float = PARTITIONS_EVERY) -> None:
    """PostgreSQL: ingest writes messages and deliveries, which are partitioned by time, so
    an API process makes the partitions of the next windows too, at start and every
    ``every`` seconds, as workers do (the first to come makes them; SQLite: nothing)."""
    while True:
        try:
            made = await store.ensure_partitions(width)
        except Exception as exc:  # the next round tries again; a write missing one does too
            log.warning("making time partitions failed (%s); will try again", exc)
        else:
            if made:
                log.info("made %d time partitions ahead", made)
        await asyncio.sleep(every)


def create_app(settings: Settings, store: Store | None = None, *, worker: bool = False) -> FastAPI:
    """The ASGI app. ``store`` is opened from settings when not given; ``worker=True`` runs
    the delivery worker inside the same process (``postback serve``)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        app.state.store = store or Store.connect(
            settings.database_url,
            secret_box=secret_box_for(settings)[0],
            pool_size=settings.database_pool_size,
        )
        task: asyncio.Task[Any] | None = None
        runner = None
        partitions: asyncio.Task[None] | None = None
        if worker:  # it makes them itself
            from postback.delivery.worker import Worker

            runner = Worker(app.state.store, settings)
            task = asyncio.create_task(runner.run(), name="postback-worker")
        else:
            partitions = asyncio.create_task(
                keep_partitions(app.state.store, settings.partition_width),
                name="postback-partitions",
            )
        try:
            yield
        finally:
            if partitions is not None:
                partitions.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await partitions
            if runner is not None and task is not None:
                runner.stop()
                await task
            if own_store:
                await app.state.store.close()

    app = FastAPI(
        title="postback",
        version=__version__,
        description="Webhook delivery with a Svix-compatible API and Standard Webhooks signatures.",
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,  # api/docs.py serves /docs without a CDN
        redoc_url=None,
        **tracing.fastapi_options(),
    )
    app.state.settings = settings
    app.state.store = store

    async def event_type_rules() -> list[dict[str, Any]]:
        # Without the server-wide switch only the event types that ask are validated.
        return await app.state.store.event_type_rules(flagged_only=not settings.validate_payloads)

    app.state.schemas = SchemaCatalog(
        event_type_rules, validate_by_default=settings.validate_payloads
    )
    app.state.background = set()
    errors.install(app)
    app.include_router(health)
    # Who may call what: applications and event-type writes decide per route; everything
    # under /app/{app_id}/ is open to that application's portal tokens.
    documented = {code: {"model": ErrorOut, "description": text} for code, text in ERRORS.items()}
    # Messages first: a request is matched against the routes in order, and POST /msg/ is
    # the hot path (what matching it last cost: docs/performance.md).
    app.include_router(messages.router, dependencies=APP_SCOPED, responses=documented)
    app.include_router(applications.router, responses=documented)
    app.include_router(event_types.router, dependencies=ANY_TOKEN, responses=documented)
    for module in (endpoints, attempts, events):
        app.include_router(module.router, dependencies=APP_SCOPED, responses=documented)
    app.include_router(auth.router, responses=documented)
    app.include_router(endpoints.operational_router, dependencies=OPERATOR, responses=documented)
    app.include_router(background_tasks.router, dependencies=OPERATOR, responses=documented)
    app.include_router(statistics.router, dependencies=OPERATOR, responses=documented)
    app.include_router(unsupported.router, dependencies=ANY_TOKEN)
    install_web(app, settings)  # the app portal and the operator dashboard
    api_docs.install(app)
    metrics.mount(app, settings)
    # Added last runs first: the request's span, CORS, size and NUL checks, then
    # idempotency, then the routes.
    app.add_middleware(Idempotency)
    app.add_middleware(BodyLimit, max_bytes=settings.max_payload_bytes)
    if settings.embed_origin_list:  # the embedding sites' pages (api/cors.py)
        app.add_middleware(Cors, origins=settings.embed_origin_list)
    if tracing.tracer is not None:  # outermost: the request's span covers all of it
        app.add_middleware(tracing.RequestSpans)
    return app
