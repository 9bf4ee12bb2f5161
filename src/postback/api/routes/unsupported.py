"""Svix SDK calls postback does not serve (README, "Svix SDK calls"): each answers 404 in
Svix's error shape, saying so, instead of a 405 from a route that shares its path."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from postback.api import errors
from postback.api.routing import SlashRouter

router = SlashRouter(tags=["Not supported"])

# (method, path, the SDK's name for it)
UNSUPPORTED = (
    ("POST", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay", "endpoint.bulk_replay"),
    ("POST", "/api/v1/app/{app_id}/msg/expunge-all-contents", "message.expunge_all_contents"),
    ("POST", "/api/v1/app/{app_id}/msg/bulk-expunge", "message.bulk_expunge_content"),
    ("POST", "/api/v1/app/{app_id}/msg/precheck/active", "message.precheck"),
    ("POST", "/api/v1/event-type/import/openapi", "event_type.import_openapi"),
)


def _answer(name: str):  # type: ignore[no-untyped-def]
    async def not_supported(request: Request) -> JSONResponse:
        return errors.error(404, f"{name} is not supported by postback")

    return not_supported


for method, path, name in UNSUPPORTED:
    router.add_api_route(path, _answer(name), methods=[method], include_in_schema=False, name=name)
