"""Payload rules (filters and projections, postback.filters): their CPU cost per message
(``rules-cpu``) and ingest with rules on every endpoint (``rules``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import harness as h
from harness import (
    Database,
    Row,
    open_store,
)

from postback.domain import encode_json
from postback.signing import decode_secret, generate_secret, signature_header

COMMERCE = h.ROOT / "examples" / "catalogs" / "commerce.json"
# An affiliate's endpoint: big purchases of one product in two countries, without buyer data.
RULE_FILTER = {
    "data.product.id": {"$exists": True},
    "data.purchase.price.value": {"$gte": 1},
    "$or": [{"data.buyer.address.country": {"$in": ["MX", "BR"]}}, {"event": {"$ne": "x"}}],
}
RULE_PROJECTION = {"exclude": ["/data/buyer", "/data/purchase/payment"]}


def _purchase_example() -> dict[str, Any]:
    catalog = json.loads(COMMERCE.read_text())
    (approved,) = [e for e in catalog["eventTypes"] if e["name"] == "purchase.approved"]
    return approved["schemas"]["1"]["examples"][0]


def bench_rules_cpu(rounds: int = 20_000) -> Row:
    """Filter + projection per delivery, against signing the same body (which every
    delivery pays): pure CPU, no database."""
    from postback.domain import decode_json
    from postback.filters import compile_filter, project

    body = encode_json(_purchase_example())
    key = decode_secret(generate_secret())

    def per_call(fn: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(rounds):
                fn()
            best = min(best, (time.perf_counter() - t0) / rounds)
        return best

    doc = decode_json(body)  # parsed once per message, whatever the endpoint count

    def rules() -> None:
        assert compile_filter(RULE_FILTER)(doc) is None
        project(doc, RULE_PROJECTION)

    rule_s = per_call(rules)
    sign_s = per_call(lambda: signature_header([key], "msg_x", 1_700_000_000, body))
    return Row(
        f"filter + projection per delivery ({len(body)} B purchase, parsed once)",
        f"{rule_s * 1e6:.1f} µs",
        f"signing it {sign_s * 1e6:.1f} µs",
        rule_s / sign_s,
        "(cost in signatures)",
        None,
    )


def bench_rules_ingest(db: Database, messages: int = 300, endpoints: int = 10) -> Row:
    """Accepting a message for 10 endpoints that each filter and project it, against 10
    endpoints without rules: the whole ingest transaction, in the store."""
    payload = encode_json(_purchase_example())

    async def rate(rules: bool) -> float:
        store = await open_store(db)
        try:
            app = await store.create_app({"name": f"rules-{rules}"})
            for i in range(endpoints):
                values: dict[str, Any] = {"url": f"http://127.0.0.1:9/{i}"}
                if rules:
                    values |= {"payload_filter": RULE_FILTER, "projection": RULE_PROJECTION}
                values["secret"] = generate_secret()
                await store.create_endpoint(app["id"], values)
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(messages):
                    await store.create_message(
                        app["id"], {"event_type": "purchase.approved", "payload": payload}
                    )
                best = min(best, time.perf_counter() - t0)
            return messages / best
        finally:
            await store.close()

    async def both() -> tuple[float, float]:
        plain, ruled = await rate(False), await rate(True)
        plain = max(plain, await rate(False))  # alternate: noise skews neither side alone
        return plain, max(ruled, await rate(True))

    plain, ruled = asyncio.run(both())
    ratio = ruled / plain
    return Row(
        f"ingest to {endpoints} endpoints with filter + projection, {db.name}",
        f"{ruled:,.0f} msg/s",
        f"no rules {plain:,.0f} msg/s",
        ratio,
        "≥ 0.70",
        ratio >= 0.7,
    )
