"""The ready-made event catalogs in examples/catalogs: well-formed, documented, self-consistent.

No database: these check the data files an operator imports with one CLI command.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from postback.api.wire.common import NAME_RE
from postback.api.wire.event_types import EventTypeIn
from postback.api.wire.messages import MessageIn
from postback.examples import example_payload

CATALOGS = Path(__file__).resolve().parents[2] / "examples" / "catalogs"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Numbers that sit beside a currency but are not money.
COUNTS = {"quantity", "interval_count"}
EVENT_TYPE_KEYS = {
    "name",
    "description",
    "descriptions",
    "groupName",
    "schemas",
    "archived",
    "deprecated",
}

EXPECTED = {
    "commerce": {
        "purchase.approved",
        "purchase.completed",
        "purchase.canceled",
        "purchase.cash_ticket_printed",
        "purchase.refund_requested",
        "purchase.refunded",
        "purchase.chargeback",
        "purchase.expired",
        "purchase.delayed",
    },
    "billing": {
        "customer.created",
        "customer.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.updated",
        "payment.created",
        "payment.succeeded",
        "payment.failed",
        "payment_source.created",
        "payment_source.updated",
        "subscription.created",
        "subscription.updated",
    },
}


def load(name: str) -> dict[str, Any]:
    return json.loads((CATALOGS / f"{name}.json").read_text(encoding="utf-8"))


def event_types(*catalogs: str) -> list[Any]:
    return [
        pytest.param(event_type, id=event_type["name"])
        for catalog in catalogs or sorted(EXPECTED)
        for event_type in load(catalog)["eventTypes"]
    ]


def sub_schemas(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema nested in ``schema`` that documents a field, with its JSON pointer."""
    for name, child in schema.get("properties", {}).items():
        yield f"{path}/{name}", child
        yield from sub_schemas(child, f"{path}/{name}")
    if isinstance(schema.get("items"), dict):
        yield f"{path}/items", schema["items"]
        yield from sub_schemas(schema["items"], f"{path}/items")
    if isinstance(schema.get("additionalProperties"), dict):
        yield f"{path}/*", schema["additionalProperties"]
        yield from sub_schemas(schema["additionalProperties"], f"{path}/*")


def undocumented(value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    """Keys of ``value`` that its schema does not describe (a typo in an example)."""
    if isinstance(value, dict) and "properties" in schema:
        for key, child in value.items():
            if key not in schema["properties"]:
                yield f"{path}/{key}"
            else:
                yield from undocumented(child, schema["properties"][key], f"{path}/{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from undocumented(item, schema["items"], f"{path}/{index}")


@pytest.mark.parametrize("catalog", sorted(EXPECTED))
def test_catalog_has_its_events_once_each(catalog: str) -> None:
    data = load(catalog)
    assert (
        {"name", "description", "eventTypes"}
        <= set(data)
        <= {
            "name",
            "description",
            "productPath",
            "eventTypes",
        }
    )
    assert data["name"] == catalog
    assert len(data["description"]) > 80
    names = [event_type["name"] for event_type in data["eventTypes"]]
    assert len(names) == len(set(names)), "duplicate event type names"
    assert EXPECTED[catalog] <= set(names), EXPECTED[catalog] - set(names)
    for name in names:
        assert re.fullmatch(NAME_RE[1:-1], name) and len(name) <= 256, name
        assert name == name.lower() and "." in name, name


@pytest.mark.parametrize("event_type", event_types())
def test_event_type_is_what_the_api_accepts(event_type: dict[str, Any]) -> None:
    assert set(event_type) <= EVENT_TYPE_KEYS
    parsed = EventTypeIn.model_validate(event_type)
    assert parsed.name == event_type["name"]
    assert parsed.group_name == event_type["name"].split(".")[0]
    assert parsed.description and list(event_type["schemas"]) == ["1"]


@pytest.mark.parametrize("event_type", event_types())
def test_schema_is_valid_draft_2020_12(event_type: dict[str, Any]) -> None:
    schema = event_type["schemas"]["1"]
    jsonschema_rs.meta.validate(schema)
    assert schema["$schema"] == DRAFT
    assert schema["type"] == "object"
    assert schema["title"] and schema["description"]
    assert set(schema["required"]) == {"id", "event", "created_at", "data"}
    assert schema["properties"]["event"]["const"] == event_type["name"]


@pytest.mark.parametrize("event_type", event_types())
def test_every_field_has_a_description(event_type: dict[str, Any]) -> None:
    schema = event_type["schemas"]["1"]
    fields = list(sub_schemas(schema, ""))
    assert len(fields) > 10
    missing = [path for path, child in fields if not child.get("description")]
    assert not missing, missing
    for path, child in fields:
        assert "type" in child, path
        for name in child.get("required", []):
            assert name in child["properties"], f"{path} requires unknown {name}"


@pytest.mark.parametrize("event_type", event_types())
def test_example_is_valid_and_fully_documented(event_type: dict[str, Any]) -> None:
    schema = event_type["schemas"]["1"]
    assert len(schema["examples"]) == 1
    example = schema["examples"][0]
    # Formats are checked too: an example's email, date-time or uri must be a real one.
    jsonschema_rs.Draft202012Validator(schema, validate_formats=True).validate(example)
    assert example["event"] == event_type["name"]
    assert not list(undocumented(example, schema, "")), list(undocumented(example, schema, ""))
    # The example is what "send example" delivers, and it must pass as a message payload.
    assert example_payload(event_type) == example
    MessageIn.model_validate({"eventType": event_type["name"], "payload": example})


@pytest.mark.parametrize("event_type", event_types())
def test_schema_rejects_the_example_for_another_event(event_type: dict[str, Any]) -> None:
    # Each schema pins its own event name, so a payload sent under the wrong type fails.
    schema = event_type["schemas"]["1"]
    validator = jsonschema_rs.Draft202012Validator(schema)
    wrong = dict(schema["examples"][0], event="something.else")
    assert not validator.is_valid(wrong)
    without_data = {key: value for key, value in schema["examples"][0].items() if key != "data"}
    assert not validator.is_valid(without_data)


def schemas_with(schema: dict[str, Any], field: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema (with its pointer) that has a property called ``field``."""
    for path, child in [("", schema), *sub_schemas(schema, "")]:
        if field in child.get("properties", {}):
            yield path, child


@pytest.mark.parametrize("event_type", event_types())
def test_money_says_its_unit_and_currency_is_iso_4217(event_type: dict[str, Any]) -> None:
    schema = event_type["schemas"]["1"]
    priced = list(schemas_with(schema, "currency"))
    assert priced or event_type["groupName"] == "payment_source", "a currency is documented"
    for path, holder in priced:
        assert holder["properties"]["currency"]["pattern"] == "^[A-Z]{3}$", path
        amounts = [
            (name, child)
            for name, child in holder["properties"].items()
            if child["type"] in ("number", "integer") and name not in COUNTS
        ]
        for name, child in amounts:
            assert "unit" in child["description"], f"{path}/{name} does not say its unit"


# ---- commerce: the payload conventions endpoints filter and project on ---------------


@pytest.mark.parametrize("event_type", event_types("commerce"))
def test_commerce_payload_conventions(event_type: dict[str, Any]) -> None:
    schema = event_type["schemas"]["1"]
    data = schema["properties"]["data"]
    assert {"product", "purchase"} <= set(data["required"])
    product = data["properties"]["product"]
    assert {"id", "name"} <= set(product["required"])
    buyer = data["properties"]["buyer"]
    assert buyer["properties"]["email"]["format"] == "email"
    purchase = data["properties"]["purchase"]
    assert purchase["properties"]["price"]["required"] == ["value", "currency"]
    assert purchase["properties"]["price"]["properties"]["value"]["type"] == "number"
    # The purchase's status after the event is pinned, so a receiver can rely on it.
    status = purchase["properties"]["status"]["const"]
    example = schema["examples"][0]["data"]
    assert example["purchase"]["status"] == status
    assert example["buyer"]["email"] and example["product"]["id"] > 0
    # The shares of the amount add up to the price the buyer paid.
    shares = sum(share["value"] for share in example.get("commissions", []))
    assert shares == pytest.approx(example["purchase"]["price"]["value"])


@pytest.mark.parametrize("event_type", event_types("commerce"))
def test_commerce_event_without_buyer_data_still_valid(event_type: dict[str, Any]) -> None:
    # An affiliate's endpoint excludes /data/buyer (and the ticket): what it receives must
    # still match the documented schema.
    schema = event_type["schemas"]["1"]
    validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    projected = json.loads(json.dumps(schema["examples"][0]))
    del projected["data"]["buyer"]
    projected["data"]["purchase"]["payment"].pop("ticket", None)
    validator.validate(projected)
    assert "buyer" not in json.dumps(projected["data"])


def test_cash_ticket_event_carries_the_ticket() -> None:
    (event_type,) = [
        e for e in load("commerce")["eventTypes"] if e["name"] == "purchase.cash_ticket_printed"
    ]
    schema = event_type["schemas"]["1"]
    payment = schema["examples"][0]["data"]["purchase"]["payment"]
    assert payment["type"] in ("boleto", "cash_payment")
    assert payment["ticket"]["code"] and payment["ticket"]["url"].startswith("https://")
    validator = jsonschema_rs.Draft202012Validator(schema)
    card = json.loads(json.dumps(schema["examples"][0]))
    card["data"]["purchase"]["payment"]["type"] = "credit_card"
    assert not validator.is_valid(card)


# ---- billing ------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", event_types("billing"))
def test_billing_object_sits_under_its_kind(event_type: dict[str, Any]) -> None:
    schema = event_type["schemas"]["1"]
    kind, _, action = event_type["name"].partition(".")
    data = schema["properties"]["data"]
    example = schema["examples"][0]["data"]
    assert kind in data["required"]
    assert example[kind]["id"]
    if action == "updated":
        # What changed must name real fields of the object.
        assert "changed_fields" in data["required"]
        fields = data["properties"][kind]["properties"]
        assert example["changed_fields"] and set(example["changed_fields"]) <= set(fields)
    else:
        assert "changed_fields" not in data["properties"]


INVOICE_EVENTS = [p for p in event_types("billing") if p.values[0]["groupName"] == "invoice"]


@pytest.mark.parametrize("event_type", INVOICE_EVENTS)
def test_invoice_amounts_add_up(event_type: dict[str, Any]) -> None:
    invoice = event_type["schemas"]["1"]["examples"][0]["data"]["invoice"]
    assert invoice["subtotal"] == sum(line["amount"] for line in invoice["lines"])
    assert invoice["total"] == invoice["subtotal"] + invoice["tax"]
    assert invoice["amount_paid"] + invoice["amount_due"] == invoice["total"]
