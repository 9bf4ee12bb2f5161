"""The endpoint routes are written once and added to two routers (a customer's endpoints and
the operator's operational ones): both must carry every shared route, each with its
trailing-slash twin, and only the customer's path declares ``{app_id}``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from postback.api.routes import endpoints

CUSTOMER_ONLY = {
    "send_example",
    "recover_failed_webhooks",
    "replay_missing_webhooks",
    "get_endpoint_stats",
    "get_endpoint_attempt_stats",
}


def _operations(router: object, prefix: str) -> set[tuple[str, str, str]]:
    return {
        (route.name, method, route.path.removeprefix(prefix))
        for route in router.routes  # type: ignore[attr-defined]
        if isinstance(route, APIRoute)
        for method in route.methods
    }


def test_both_routers_carry_every_shared_route_with_and_without_the_slash() -> None:
    customer = _operations(endpoints.router, "/api/v1/app/{app_id}/endpoint")
    operational = _operations(endpoints.operational_router, "/api/v1/operational-webhook/endpoint")
    shared = {op for op in customer if op[0] not in CUSTOMER_ONLY}
    assert shared == operational
    assert {op[0] for op in customer} - {op[0] for op in operational} == CUSTOMER_ONLY
    # Credentials (mTLS, OAuth2) are among the shared routes.
    assert {"get_endpoint_mtls", "set_endpoint_oauth"} <= {op[0] for op in operational}
    for name, method, path in operational:
        twin = path[:-1] if path.endswith("/") else path + "/"
        assert (name, method, twin) in operational, (name, method, path)


def test_only_the_customer_path_documents_its_application() -> None:
    app = FastAPI()
    app.include_router(endpoints.router)
    app.include_router(endpoints.operational_router)
    paths = app.openapi()["paths"]
    customer = paths["/api/v1/app/{app_id}/endpoint/{endpoint_id}"]["get"]["parameters"]
    operational = paths["/api/v1/operational-webhook/endpoint/{endpoint_id}"]["get"]
    assert [p["name"] for p in customer] == ["endpoint_id", "app_id"]
    assert [p["name"] for p in operational["parameters"]] == ["endpoint_id"]
    assert operational["operationId"] == (
        "get_endpoint_api_v1_operational_webhook_endpoint__endpoint_id__get"
    )
