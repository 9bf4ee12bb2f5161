"""…/endpoint/{endpoint_id}/ordering: an ordered endpoint's key heads, listed, retried
now, or skipped (postback's own routes; docs/architecture.md, "Ordered delivery").

Added to both of routes/endpoints.py's routers, as its shared routes are."""

from __future__ import annotations

from typing import Any

from postback.api.deps import EndpointApp, PrincipalDep, StoreDep
from postback.api.routing import Routes
from postback.api.wire.ordering import OrderingHeadOut, OrderingHeadsOut, OrderingKeyIn
from postback.domain import MessageStatus

routes = Routes()


def _head(row: dict[str, Any]) -> OrderingHeadOut:
    return OrderingHeadOut(
        ordering_key=row["ordering_key"] or None,
        msg_id=row["msg_id"],
        status=row["status"],
        status_text=MessageStatus(row["status"]).text,
        attempts=row["attempt_count"],
        next_attempt=row["next_attempt_at"],
        waiting_since=row["created_at"],
        note=row.get("note"),
    )


@routes.get("/{endpoint_id}/ordering", response_model=OrderingHeadsOut)
async def list_ordering_heads(
    app: EndpointApp, endpoint_id: str, store: StoreDep
) -> OrderingHeadsOut:
    """Each ordering key's head (the delivery its later messages wait behind), the
    longest-waiting first, at most 100."""
    rows = await store.ordering_heads(app["id"], endpoint_id)
    return OrderingHeadsOut(data=[_head(r) for r in rows])


@routes.post("/{endpoint_id}/ordering/retry", response_model=OrderingHeadOut)
async def retry_ordering_head(
    app: EndpointApp, endpoint_id: str, body: OrderingKeyIn, store: StoreDep
) -> OrderingHeadOut:
    """Send a key's head now instead of at its next retry (409 while it is in flight or
    the endpoint is disabled)."""
    return _head(await store.retry_head(app["id"], endpoint_id, body.ordering_key or ""))


@routes.post("/{endpoint_id}/ordering/skip", response_model=OrderingHeadOut)
async def skip_ordering_head(
    app: EndpointApp,
    endpoint_id: str,
    body: OrderingKeyIn,
    store: StoreDep,
    principal: PrincipalDep,
) -> OrderingHeadOut:
    """Give up a key's head (canceled, its note saying who skipped it and when) so the
    key's next message goes out (409 while it is in flight)."""
    who = "operator" if principal.is_operator else "app portal"
    who = f"{who} token {principal.token_id}"
    return _head(await store.skip_head(app["id"], endpoint_id, body.ordering_key or "", who))
