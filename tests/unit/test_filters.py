"""Payload filters and projections (postback.filters), and schema checks (postback.schemas)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from postback.filters import RuleError, check_filter, check_projection, compile_filter, project
from postback.schemas import SchemaError, check_schemas, latest_schema

PURCHASE = {
    "event": "purchase.approved",
    "data": {
        "product": {"id": 42, "name": "Course"},
        "buyer": {"email": "ana@example.com", "country": "MX", "vip": True},
        "purchase": {"price": {"value": 149.9, "currency": "MXN"}, "installments": 3},
        "tags": ["promo", "launch"],
        "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}],
        "coupon": None,
        "approved_at": "2026-11-25T10:00:00Z",
    },
}


def matches(rule: dict[str, Any], payload: Any = PURCHASE) -> bool:
    return compile_filter(check_filter(rule))(payload) is None


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"data.product.id": 42}, True),
        ({"data.product.id": 43}, False),
        ({"data.product.id": "42"}, False),  # no type coercion
        ({"data.buyer.vip": 1}, False),  # JSON true is not 1
        ({"data.buyer.vip": True}, True),
        ({"data.purchase.price.value": {"$gte": 100}}, True),
        ({"data.purchase.price.value": {"$gt": 149.9}}, False),
        ({"data.purchase.price.value": {"$gt": 100, "$lt": 149}}, False),
        ({"data.purchase.installments": {"$lte": 3, "$gte": 3}}, True),
        ({"data.purchase.price.value": {"$gt": "100"}}, False),  # number vs string: no order
        ({"data.approved_at": {"$gte": "2026-11-01"}}, True),  # ISO dates order as text
        ({"data.buyer.country": {"$in": ["CO", "MX"]}}, True),
        ({"data.buyer.country": {"$nin": ["CO", "MX"]}}, False),
        ({"data.buyer.state": {"$nin": ["CO"]}}, True),  # a missing field is in no list
        ({"data.buyer.state": {"$in": ["CO"]}}, False),
        ({"data.buyer.country": {"$ne": "MX"}}, False),
        ({"data.coupon": None}, True),  # null is a value
        ({"data.coupon": {"$exists": True}}, True),
        ({"data.missing": {"$exists": False}}, True),
        ({"data.missing": None}, False),  # missing is not null
        ({"data.tags": "promo"}, True),  # a list field holds the literal
        ({"data.tags": {"$in": ["x", "launch"]}}, True),
        ({"data.items.1.sku": "B"}, True),
        ({"data.items.2.sku": {"$exists": True}}, False),
        ({"$or": [{"data.buyer.country": "CO"}, {"data.product.id": 42}]}, True),
        ({"$or": [{"data.buyer.country": "CO"}, {"data.product.id": 7}]}, False),
        ({"$and": [{"data.buyer.country": "MX"}, {"data.product.id": 42}]}, True),
        ({"data.product.id": 42, "$or": [{"data.buyer.vip": False}]}, False),
        ({}, True),
    ],
)
def test_filter_operators(rule: dict[str, Any], expected: bool) -> None:
    assert matches(rule) is expected


def test_integers_past_64_bits_compare_exactly() -> None:
    big = 2**70
    payload = {"data": {"id": big, "n": 2**70 + 1}}
    assert matches({"data.id": big}, payload)
    assert not matches({"data.id": big + 1}, payload)
    why = compile_filter({"data.n": {"$lt": big}})(payload)
    assert why == f"data.n $lt {big} did not hold"


def test_a_failed_filter_says_which_clause() -> None:
    why = compile_filter({"data.product.id": 42, "data.purchase.price.value": {"$gte": 500}})(
        PURCHASE
    )
    assert why == "data.purchase.price.value $gte 500 did not hold"


@pytest.mark.parametrize(
    ("rule", "loc", "words"),
    [
        ([1], [], "JSON object"),
        ({"$where": "x"}, ["$where"], "unknown operator"),
        ({"a": {"$regex": "x"}}, ["a", "$regex"], "unknown operator"),
        ({"a": {"$in": "MX"}}, ["a", "$in"], "list"),
        ({"a": {"$gt": [1]}}, ["a", "$gt"], "number or a string"),
        ({"a": {"$gt": True}}, ["a", "$gt"], "number or a string"),
        ({"a": {"$exists": 1}}, ["a", "$exists"], "true or false"),
        ({"a": {}}, ["a"], "empty"),
        ({"a": {"b": 1}}, ["a", "b"], "unknown operator"),
        ({"a..b": 1}, ["a..b"], "dotted"),
        ({"$or": []}, ["$or"], "non-empty list"),
        ({"$or": [{"a": 1}, "b"]}, ["$or", 1], "JSON object"),
        ({"a": [1, 2]}, ["a"], "string, number"),
        ({"a": {"$in": list(range(1001))}}, ["a", "$in"], "at most 1000"),
        ({"x" * 9000: 1}, [], "larger than"),
    ],
)
def test_bad_filters_are_refused_with_their_place(
    rule: Any, loc: list[str | int], words: str
) -> None:
    with pytest.raises(RuleError) as caught:
        check_filter(rule)
    assert caught.value.loc == loc
    assert words in str(caught.value)


def test_filters_nest_no_deeper_than_the_limit() -> None:
    rule: dict[str, Any] = {"a": 1}
    for _ in range(10):
        rule = {"$and": [rule]}
    with pytest.raises(RuleError, match="deeper"):
        check_filter(rule)


def test_projection_excludes_and_includes_pointers() -> None:
    excluded = orjson.loads(project(PURCHASE, {"exclude": ["/data/buyer", "/data/items/0"]}))
    assert "buyer" not in excluded["data"]
    assert excluded["data"]["items"] == [{"sku": "B", "qty": 2}]
    assert excluded["data"]["product"] == PURCHASE["data"]["product"]
    # The message itself is untouched: every endpoint projects the same parsed payload.
    assert "buyer" in PURCHASE["data"] and len(PURCHASE["data"]["items"]) == 2

    included = orjson.loads(
        project(PURCHASE, {"include": ["/event", "/data/product/id", "/data/items/1/sku", "/no"]})
    )
    # An array on the way is included whole; a pointer to nothing is ignored.
    assert included == {
        "event": "purchase.approved",
        "data": {"product": {"id": 42}, "items": PURCHASE["data"]["items"]},
    }


def test_projection_pointers_unescape() -> None:
    doc = {"a/b": 1, "m~n": 2, "keep": 3}
    assert orjson.loads(project(doc, {"exclude": ["/a~1b", "/m~0n"]})) == {"keep": 3}


@pytest.mark.parametrize(
    "rule",
    [
        {"include": []},
        {"include": ["data"]},
        {"exclude": ["/a~2"]},
        {"include": ["/a"], "exclude": ["/b"]},
        {"only": ["/a"]},
        {"exclude": "/a"},
    ],
)
def test_bad_projections_are_refused(rule: Any) -> None:
    with pytest.raises(RuleError):
        check_projection(rule)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@given(st.dictionaries(st.text(min_size=1, max_size=4), json_values, max_size=5))
def test_excluding_every_top_level_key_leaves_an_empty_object(doc: dict[str, Any]) -> None:
    pointers = ["/" + k.replace("~", "~0").replace("/", "~1") for k in doc] or ["/x"]
    assert orjson.loads(project(doc, {"exclude": pointers})) == {}
    assert orjson.loads(project(doc, {"include": pointers})) == doc


def test_schemas_are_checked_and_the_newest_version_wins() -> None:
    good = {"1": {"type": "object"}, "2": {"type": "object", "required": ["id"]}}
    assert check_schemas(good) is good
    assert latest_schema({"9": {"a": 1}, "10": {"b": 2}}) == {"b": 2}
    with pytest.raises(SchemaError, match="1:"):
        check_schemas({"1": {"type": "no-such-type"}})
    with pytest.raises(SchemaError):
        check_schemas({"1": ["not", "an", "object"]})
