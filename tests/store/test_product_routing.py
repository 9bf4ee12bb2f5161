"""Product restriction and the message's destinations, on SQLite and PostgreSQL: an
endpoint for one product gets the messages naming it (in the payload, or as a channel);
every endpoint of the application is listed for a message, those it did not go to with the
reason."""

from __future__ import annotations

import sqlalchemy as sa

from postback import reasons
from postback.domain import MessageStatus, encode_json
from postback.signing import generate_secret
from postback.store import schema
from postback.store.pages import Page
from postback.store.store import Store


async def _endpoint(store: Store, app_id: str, **values: object) -> dict:
    return await store.create_endpoint(
        app_id, {"url": "http://127.0.0.1:9/hook", "secret": generate_secret(), **values}
    )


async def _send(store: Store, app_id: str, event_type: str, product: str | None, **kw: object):
    payload = {"data": {"product": {"id": product}}} if product else {"data": {}}
    row, _ = await store.create_message(
        app_id,
        {"event_type": event_type, "payload": encode_json(payload), "product": product, **kw},
    )
    return row


async def _delivered_to(store: Store, msg_id: str) -> set[str]:
    d = schema.deliveries.c
    async with store.engine.connect() as conn:
        found = await conn.scalars(sa.select(d.endpoint_id).where(d.msg_id == msg_id))
        return set(found)


async def test_one_product_endpoint_gets_its_product_without_channels(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    every = await _endpoint(store, app["id"])
    one = await _endpoint(store, app["id"], product="42")
    other = await _endpoint(store, app["id"], product="7")

    msg = await _send(store, app["id"], "purchase.approved", "42")
    assert await _delivered_to(store, msg["id"]) == {every["id"], one["id"]}
    stored = await store.get_message(app["id"], msg["id"])
    assert stored["product"] == "42"

    # A sender naming the product as a channel (no product in the payload) still reaches it.
    by_channel = await _send(store, app["id"], "purchase.approved", None, channels=["7"])
    assert await _delivered_to(store, by_channel["id"]) == {every["id"], other["id"]}

    # No product at all: only the endpoint for every product.
    none = await _send(store, app["id"], "purchase.approved", None)
    assert await _delivered_to(store, none["id"]) == {every["id"]}


async def test_destinations_list_every_endpoint_with_why_not(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    gets = await _endpoint(store, app["id"], event_types=["purchase.approved"])
    wrong_type = await _endpoint(store, app["id"], event_types=["purchase.refunded"])
    wrong_product = await _endpoint(store, app["id"], product="7")
    wrong_channel = await _endpoint(store, app["id"], channels=["vip"])
    filtered = await _endpoint(
        store, app["id"], payload_filter={"data.product.id": {"$eq": "nope"}}
    )
    off = await _endpoint(store, app["id"])
    await store.update_endpoint(app["id"], off["id"], {"disabled": True})

    msg = await _send(store, app["id"], "purchase.approved", "42")
    later = await _endpoint(store, app["id"])
    page = await store.list_destinations(app["id"], msg["id"], Page(limit=50))
    rows = {r["id"]: r for r in page.rows}
    assert set(rows) == {
        gets["id"],
        wrong_type["id"],
        wrong_product["id"],
        wrong_channel["id"],
        filtered["id"],
        off["id"],
        later["id"],
    }
    assert rows[gets["id"]]["status"] == MessageStatus.PENDING
    codes = {ep_id: (r["reason"] or {}).get("code") for ep_id, r in rows.items()}
    assert codes == {
        gets["id"]: None,
        wrong_type["id"]: reasons.EVENT_TYPE,
        wrong_product["id"]: reasons.PRODUCT,
        wrong_channel["id"]: reasons.CHANNEL,
        filtered["id"]: reasons.FILTER,
        off["id"]: reasons.DISABLED,
        later["id"]: reasons.CREATED_AFTER,
    }
    for ep_id, row in rows.items():
        if ep_id != gets["id"]:
            assert row["status"] == MessageStatus.CANCELED, row
    assert rows[wrong_product["id"]]["reason"] == {
        "code": reasons.PRODUCT,
        "product": "7",
        "found": "42",
    }
    assert rows[wrong_type["id"]]["reason"]["subscribed"] == ["purchase.refunded"]
    assert "did not hold" in rows[filtered["id"]]["reason"]["clause"]

    # Paged by endpoint id, like any listing: two pages hold the same endpoints.
    first = await store.list_destinations(app["id"], msg["id"], Page(limit=4))
    rest = await store.list_destinations(
        app["id"], msg["id"], Page(limit=4, iterator=first.iterator)
    )
    assert not first.done and rest.done
    assert [r["id"] for r in first.rows + rest.rows] == sorted(rows)


async def test_disabled_reason_is_a_code(store: Store) -> None:
    app = await store.create_app({"name": "shop"})
    ep = await _endpoint(store, app["id"])
    row = await store.update_endpoint(app["id"], ep["id"], {"disabled": True})
    assert reasons.disabled_cause(row["disabled_reason"]) == {"code": reasons.BY_REQUEST}
    again = await store.get_endpoint(app["id"], ep["id"])
    assert reasons.disabled_cause(again["disabled_reason"]) == {"code": reasons.BY_REQUEST}
