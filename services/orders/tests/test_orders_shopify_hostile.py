"""The Shopify mapping under hostile JSON: any value in any place is mapped (with checks for staff) or refused with
reasons, never a crash."""

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ordermesh_contracts import MAX_MINOR_UNITS
from ordermesh_orders.domain.shopify import ShopifyMappingError, map_order

FIXTURE = json.loads((Path(__file__).parent / "data" / "shopify_orders_create.json").read_text())

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
hostile_scalars = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "sNaN", "1e999999999", "9" * 100, "12.345", "", "¹²", 10**40, -1, 1e308, True, [], {}]
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


PATHS = _paths(FIXTURE)


def _replaced(*changes: tuple[tuple, Any]) -> dict:
    order = json.loads(json.dumps(FIXTURE))
    for path, new in changes:
        target = order
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = new
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced what this path leads through
    return order


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), json_values | hostile_scalars), min_size=1, max_size=4))
def test_any_values_in_any_places_of_a_shopify_order_are_mapped_or_refused_with_reasons(changes):
    try:
        map_order("kyoto-tea", _replaced(*changes))
    except ShopifyMappingError as error:
        assert error.reasons and all(isinstance(reason, str) for reason in error.reasons)


def test_a_name_made_of_non_text_parts_is_mapped_as_text():
    order = _replaced((("billing_address", "name"), None), (("billing_address", "last_name"), 5))
    assert map_order("kyoto-tea", order).billing_address.name == "5 花子"


@pytest.mark.parametrize("price", [str(MAX_MINOR_UNITS + 1), "1e999999999", "-1e999999999", "NaN", "Infinity", "9" * 5000])
def test_a_price_beyond_the_contract_range_is_refused_before_any_arithmetic(price):
    order = _replaced((("line_items", 0, "price"), price))
    with pytest.raises(ShopifyMappingError) as refused:
        map_order("kyoto-tea", order)
    assert any("line_items[0] price" in reason for reason in refused.value.reasons)
