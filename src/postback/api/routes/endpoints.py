"""/api/v1/app/{app_id}/endpoint: where a customer wants its webhooks; and the same routes
at /api/v1/operational-webhook/endpoint for the operator's own endpoints.

The handlers are written once, on ``shared``, and added to both routers; ``EndpointApp``
tells them which application they serve. Test events, recovery and statistics are for
customer endpoints only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from postback import ids, operations
from postback.api import views
from postback.api.catalog_rules import check_known
from postback.api.deps import (
    EndpointApp,
    PageDep,
    PrincipalDep,
    SchemasDep,
    SettingsDep,
    StoreDep,
    app_id_in_path,
)
from postback.api.endpoint_rules import check_destination, check_token_url, no_room
from postback.api.errors import FieldError
from postback.api.idempotency import remember_message
from postback.api.optins import RETURN_REPRESENTATION, prefers_representation
from postback.api.routes import endpoint_credentials, endpoint_ordering
from postback.api.routing import Routes, SlashRouter
from postback.api.tasks import run_in_background
from postback.api.wire.background_tasks import RecoverIn, RecoverOut, ReplayIn, ReplayOut
from postback.api.wire.common import SENSITIVE_HEADERS, ListResponse, check_headers
from postback.api.wire.endpoints import (
    EndpointAttemptStats,
    EndpointFields,
    EndpointHeadersIn,
    EndpointHeadersOut,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointSecretOut,
    EndpointSecretRotateIn,
    EndpointStats,
    EventExampleIn,
)
from postback.api.wire.messages import MessageOut
from postback.api.wire.ordering import OrderingSummaryOut
from postback.config import Settings
from postback.examples import NoSuchExample
from postback.operations import UnknownEventType
from postback.schemas import SchemaCatalog
from postback.signing import generate_secret, public_secret
from postback.store.core import OPERATIONAL_APP_ID
from postback.store.errors import NotFound
from postback.store.store import Store


async def _check_url(url: str | None, settings: Settings) -> None:
    if url is not None:
        await check_destination(url, settings)


async def _check_fields(
    body: EndpointFields, settings: Settings, catalog: SchemaCatalog, app_id: str
) -> None:
    await _check_url(getattr(body, "url", None), settings)
    if body.oauth is not None:
        await check_token_url(body.oauth.token_url, settings)
    # A strict catalog: a customer endpoint's filterTypes name event types of the catalog
    # (the operator's endpoints name operational ones).
    strict = settings.strict_catalog and app_id != OPERATIONAL_APP_ID
    if strict and body.event_types:
        await check_known(catalog, body.event_types, ["body", "filterTypes"], listed=True)


def _credentials_as_sent(body: EndpointFields, values: dict) -> dict:
    """Credentials are changed only by a request that names them: a PUT or PATCH without
    them (the svix SDK's update) keeps what PUT …/mtls and …/oauth set."""
    for name in ("mtls", "oauth"):
        if name not in body.model_fields_set:
            values.pop(name, None)
    return values


async def _check_room(store: Store, settings: Settings, app_id: str) -> None:
    # 409, as for a uid in use: the body is valid, the application's state refuses it,
    # and deleting an endpoint resolves it.
    problem = await no_room(store, settings, app_id)
    if problem:
        raise HTTPException(409, problem)


def _headers_out(headers: dict[str, str]) -> dict:
    # Credentials a customer put in a header are written, never read back.
    hidden = sorted(k for k in headers if k.lower() in SENSITIVE_HEADERS)
    shown = {k: v for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS}
    return {"headers": shown, "sensitive": hidden}


# The routes of both places.
shared = Routes()


@shared.get("/", response_model=ListResponse[EndpointOut])
async def list_endpoints(app: EndpointApp, store: StoreDep, page: PageDep) -> dict:
    return views.listing(await store.list_endpoints(app["id"], page), views.endpoint)


@shared.post("/", response_model=EndpointOut, status_code=201)
async def create_endpoint(
    app: EndpointApp, body: EndpointIn, store: StoreDep, settings: SettingsDep, schemas: SchemasDep
) -> EndpointOut:
    await _check_fields(body, settings, schemas, app["id"])
    await _check_room(store, settings, app["id"])
    values = body.model_dump()
    values["secret"] = values["secret"] or generate_secret()
    return views.endpoint(await store.create_endpoint(app["id"], values))


@shared.get("/{endpoint_id}", response_model=EndpointOut)
async def get_endpoint(app: EndpointApp, endpoint_id: str, store: StoreDep) -> EndpointOut:
    """An ordered endpoint's output also says how many of its ordering keys are blocked
    and since when the oldest is (``ordering``: one read of the ordering index)."""
    row = await store.get_endpoint(app["id"], endpoint_id)
    out = views.endpoint(row)
    if row["ordered"]:
        found = await store.blocked_summary(row["id"])
        out.ordering = OrderingSummaryOut(
            blocked_keys=found["count"], oldest_blocked_since=found["oldest"]
        )
    return out


@shared.put(
    "/{endpoint_id}",
    response_model=EndpointOut,
    responses={201: {"model": EndpointOut, "description": "Created under this uid"}},
)
async def upsert_endpoint(
    app: EndpointApp,
    endpoint_id: str,
    body: EndpointPatch,
    store: StoreDep,
    settings: SettingsDep,
    schemas: SchemasDep,
    response: Response,
) -> EndpointOut:
    await _check_fields(body, settings, schemas, app["id"])
    values = _credentials_as_sent(body, body.model_dump(exclude={"url"}))
    if body.url is not None:
        values["url"] = body.url
    values["disabled"] = bool(values["disabled"])
    values["ordered"] = bool(values["ordered"])
    values["description"] = values["description"] or ""
    values["metadata"] = values["metadata"] or {}
    if values["uid"] is None and not ids.has_prefix(endpoint_id, ids.ENDPOINT):
        values["uid"] = endpoint_id  # addressed by uid: it keeps it
    try:
        return views.endpoint(await store.update_endpoint(app["id"], endpoint_id, values))
    except NotFound:
        if ids.has_prefix(endpoint_id, ids.ENDPOINT):
            raise
    # PUT to an unknown uid creates the endpoint under that uid.
    checked = EndpointIn.model_validate(values)
    await _check_room(store, settings, app["id"])
    created = checked.model_dump() | {"secret": generate_secret()}
    response.status_code = 201
    return views.endpoint(await store.create_endpoint(app["id"], created))


@shared.patch("/{endpoint_id}", response_model=EndpointOut)
async def patch_endpoint(
    app: EndpointApp,
    endpoint_id: str,
    body: EndpointPatch,
    store: StoreDep,
    settings: SettingsDep,
    schemas: SchemasDep,
) -> EndpointOut:
    await _check_fields(body, settings, schemas, app["id"])
    values = body.model_dump(include=body.model_fields_set)
    for required in ("url", "disabled", "ordered", "description", "metadata"):
        if required in values and values[required] is None:
            del values[required]
    return views.endpoint(await store.update_endpoint(app["id"], endpoint_id, values))


@shared.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(app: EndpointApp, endpoint_id: str, store: StoreDep) -> Response:
    await store.delete_endpoint(app["id"], endpoint_id)
    return Response(status_code=204)


@shared.get("/{endpoint_id}/secret", response_model=EndpointSecretOut)
async def get_endpoint_secret(
    app: EndpointApp, endpoint_id: str, store: StoreDep, principal: PrincipalDep
) -> dict:
    ep = await store.get_endpoint(app["id"], endpoint_id)
    if principal.read_only:
        # Read-only means no secrets: with the signing secret one could forge webhooks.
        raise HTTPException(403, "a read-only portal token cannot read signing secrets")
    # An ed25519 endpoint's private key never leaves: receivers verify with its public key.
    return {"key": public_secret(ep["secret"])}


@shared.post(
    "/{endpoint_id}/secret/rotate",
    status_code=204,
    responses={
        200: {
            "model": EndpointSecretOut,
            "description": "The new key, when asked with Prefer: return=representation",
        }
    },
)
async def rotate_endpoint_secret(
    app: EndpointApp,
    endpoint_id: str,
    store: StoreDep,
    settings: SettingsDep,
    request: Request,
    body: EndpointSecretRotateIn | None = None,
) -> Response:
    """Replace the signing secret: 204, as Svix. Deliveries are signed with both for
    ``gracePeriodSeconds`` (default 24 h). ``Prefer: return=representation`` (and the
    Svix SDKs, which read it) gets 200 with the new key (see api/optins.py)."""
    body = body or EndpointSecretRotateIn()
    grace = (
        settings.rotation_grace if body.grace_period_seconds is None else body.grace_period_seconds
    )
    key = await operations.rotate_endpoint_secret(store, app["id"], endpoint_id, grace, body.key)
    if not prefers_representation(request):
        return Response(status_code=204)
    applied = {"preference-applied": RETURN_REPRESENTATION}
    return JSONResponse({"key": public_secret(key)}, headers=applied)


@shared.get("/{endpoint_id}/headers", response_model=EndpointHeadersOut)
async def get_endpoint_headers(app: EndpointApp, endpoint_id: str, store: StoreDep) -> dict:
    ep = await store.get_endpoint(app["id"], endpoint_id)
    return _headers_out(ep["headers"])


@shared.put("/{endpoint_id}/headers", status_code=204)
async def update_endpoint_headers(
    app: EndpointApp, endpoint_id: str, body: EndpointHeadersIn, store: StoreDep
) -> Response:
    await store.update_endpoint(app["id"], endpoint_id, {"headers": body.headers})
    return Response(status_code=204)


@shared.patch("/{endpoint_id}/headers", status_code=204)
async def patch_endpoint_headers(
    app: EndpointApp, endpoint_id: str, body: EndpointHeadersPatchIn, store: StoreDep
) -> Response:
    ep = await store.get_endpoint(app["id"], endpoint_id)
    headers = {**ep["headers"], **body.headers}
    drop = {h.lower() for h in body.delete_headers or ()}
    headers = {k: v for k, v in headers.items() if k.lower() not in drop}
    try:
        check_headers(headers)
    except ValueError as exc:
        raise FieldError(["body", "headers"], str(exc)) from None
    await store.update_endpoint(app["id"], ep["id"], {"headers": headers})
    return Response(status_code=204)


def _with_shared(router: SlashRouter) -> SlashRouter:
    shared.add_to(router)
    endpoint_credentials.routes.add_to(router)
    endpoint_ordering.routes.add_to(router)
    return router


router = _with_shared(
    SlashRouter(
        prefix="/api/v1/app/{app_id}/endpoint",
        tags=["Endpoint"],
        dependencies=[Depends(app_id_in_path)],
    )
)


@router.post("/{endpoint_id}/send-example", response_model=MessageOut)
async def send_example(
    app: EndpointApp,
    endpoint_id: str,
    body: EventExampleIn,
    store: StoreDep,
    request: Request,
) -> MessageOut:
    """Send a test event to this endpoint alone: the event type's example payload (from its
    schema's ``examples``, else one generated from the schema), signed and recorded like any
    other message."""
    try:
        row = await operations.send_test_event(
            store,
            app["id"],
            endpoint_id,
            body.event_type,
            payload=body.payload,
            example_index=body.example_index or 0,
        )
    except UnknownEventType as exc:
        raise FieldError(["body", "eventType"], str(exc)) from None
    except NoSuchExample as exc:
        raise FieldError(["body", "exampleIndex"], str(exc)) from None
    remember_message(request.scope, app["id"], row["id"], True)
    return views.message(row)


@router.post("/{endpoint_id}/recover", response_model=RecoverOut, status_code=202)
async def recover_failed_webhooks(
    app: EndpointApp, endpoint_id: str, body: RecoverIn, store: StoreDep, request: Request
) -> RecoverOut:
    """Queue again every failed delivery to this endpoint since ``since`` (and before
    ``until``), each with a fresh retry schedule. Runs in the background: read its
    progress at /api/v1/background-task/{id}."""
    task = await store.start_recover(app["id"], endpoint_id, body.since, body.until)
    run_in_background(request, store.run_recover(task["id"]))
    return RecoverOut.model_validate(task)


@router.post("/{endpoint_id}/replay-missing", response_model=ReplayOut, status_code=202)
async def replay_missing_webhooks(
    app: EndpointApp, endpoint_id: str, body: ReplayIn, store: StoreDep, request: Request
) -> ReplayOut:
    """Send this endpoint every message since ``since`` (and before ``until``) that it never
    got, as it would route them now (subscriptions, product, payload filter); messages it
    already has are not sent again. Runs in the background: ``data.messagesSent`` at
    /api/v1/background-task/{id}."""
    task = await store.start_replay(app["id"], endpoint_id, body.since, body.until)
    run_in_background(request, store.run_replay(task["id"]))
    return ReplayOut.model_validate(task)


@router.get("/{endpoint_id}/stats", response_model=EndpointStats)
async def get_endpoint_stats(
    app: EndpointApp,
    endpoint_id: str,
    store: StoreDep,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> dict:
    return await store.endpoint_stats(app["id"], endpoint_id, since, until)


@router.get("/{endpoint_id}/attempt-stats", response_model=EndpointAttemptStats)
async def get_endpoint_attempt_stats(
    app: EndpointApp,
    endpoint_id: str,
    store: StoreDep,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> dict:
    """The endpoint's delivery attempts by outcome (``v1.endpoint.get-attempt-stats``);
    the window is widened to whole hours, as Svix's is."""
    start = _hour_floor(since) if since else None
    end = _hour_floor(until - HOUR_TICK) + timedelta(hours=1) if until else None
    return await store.endpoint_attempt_stats(app["id"], endpoint_id, start, end)


HOUR_TICK = timedelta(microseconds=1)  # an until already on the hour stays there


def _hour_floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


operational_router = _with_shared(
    SlashRouter(
        prefix="/api/v1/operational-webhook/endpoint", tags=["Operational Webhook Endpoint"]
    )
)
