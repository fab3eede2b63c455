"""The range of money amounts: one bound, |amount| <= MAX_MINOR_UNITS, in Money and in every amount field."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from ordermesh_contracts import MAX_MINOR_UNITS, Money, ShopOrderSubmitted
from ordermesh_contracts.orders import Charges


@pytest.mark.parametrize("amount", [MAX_MINOR_UNITS, -MAX_MINOR_UNITS, 0])
def test_amounts_up_to_the_bound_either_way_are_money(amount):
    assert Money(amount=amount, currency="JPY").amount == amount


@pytest.mark.parametrize("amount", [MAX_MINOR_UNITS + 1, -MAX_MINOR_UNITS - 1, 10**30, -(10**4000)])
def test_amounts_beyond_the_bound_are_refused(amount):
    with pytest.raises(ValidationError) as refused:
        Money(amount=amount, currency="JPY")
    assert refused.value.errors()[0]["loc"] == ("amount",)


def test_a_field_of_its_own_lower_bound_keeps_it_and_gains_the_upper_one():
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Charges(shipping_fee=-1, total=0)
    with pytest.raises(ValidationError, match="less than or equal to"):
        Charges(shipping_fee=MAX_MINOR_UNITS + 1, total=0)
    assert Charges(total=-5).total == -5


def test_an_order_whose_total_is_beyond_the_bound_is_refused_by_the_contract():
    raw = json.loads((Path(__file__).parent / "golden" / "ShopOrderSubmitted.json").read_text(encoding="utf-8"))
    raw["charges"]["total"] = MAX_MINOR_UNITS + 1
    with pytest.raises(ValidationError) as refused:
        ShopOrderSubmitted.model_validate(raw)
    assert refused.value.errors()[0]["loc"] == ("charges", "total")
