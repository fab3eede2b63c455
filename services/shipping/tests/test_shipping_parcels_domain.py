"""Parcels of one delivery group: partly shipped until every unit is out, and parcels the shipment can't hold are
refused; partly shipped deliveries can't be edited or cancelled."""

from uuid import uuid4

import pytest
from ordermesh_shipping.domain.cancellation import ShipmentToCancel, plan_cancellation
from ordermesh_shipping.domain.editing import plan_groups
from ordermesh_shipping.domain.parcels import ParcelRefused, plan_parcel, units_of, unshipped


def test_a_first_parcel_with_part_of_the_units_leaves_the_shipment_partly_shipped() -> None:
    plan = plan_parcel({"A": 3, "B": 1}, {}, {"A": 2, "B": 1})
    assert (plan.units, plan.status) == ({"A": 2, "B": 1}, "partly_shipped")


def test_the_parcel_with_the_last_units_ships_the_shipment() -> None:
    assert plan_parcel({"A": 3, "B": 1}, {"A": 2, "B": 1}, {"A": 1}).status == "shipped"


def test_a_single_parcel_with_every_unit_ships_the_shipment() -> None:
    assert plan_parcel({"A": 3}, {}, {"A": 3}).status == "shipped"


def test_a_parcel_with_more_than_is_unshipped_is_refused_naming_the_sku_and_both_counts() -> None:
    with pytest.raises(ParcelRefused, match=r"A: 2 in the parcel, 1 unshipped"):
        plan_parcel({"A": 3, "B": 1}, {"A": 2}, {"A": 2, "B": 1})


def test_a_parcel_with_a_sku_the_delivery_group_lacks_is_refused() -> None:
    with pytest.raises(ParcelRefused, match=r"Z: 1 in the parcel, 0 unshipped"):
        plan_parcel({"A": 3}, {}, {"A": 1, "Z": 1})


def test_a_parcel_of_a_shipment_that_fully_left_is_refused() -> None:
    with pytest.raises(ParcelRefused, match="more than the shipment has unshipped"):
        plan_parcel({"A": 3}, {"A": 3}, {"A": 1})


def test_a_parcel_carrying_nothing_is_refused() -> None:
    with pytest.raises(ParcelRefused, match="carries no units"):
        plan_parcel({"A": 3}, {}, units_of([("A", 0)]))


def test_units_of_adds_a_sku_named_twice_and_leaves_out_empty_lines() -> None:
    assert units_of([("A", 1), ("B", 0), ("A", 2)]) == {"A": 3}


def test_unshipped_is_what_no_parcel_carried_yet() -> None:
    assert unshipped({"A": 3, "B": 1}, {"A": 2, "B": 1}) == {"A": 1}


def test_an_edit_of_a_partly_shipped_delivery_is_refused() -> None:
    plan = plan_groups([0], {0: "partly_shipped"}, {(0, "A"): 1})
    assert (plan.refused, plan.to_cancel) == ({0: "delivery 0 already partly shipped"}, [])


def test_a_partly_shipped_shipment_is_not_cancelled_and_keeps_its_units_allocated() -> None:
    shipment = ShipmentToCancel(uuid4(), 0, "partly_shipped", {"A": 3})
    plan = plan_cancellation([shipment], {}, {"A": 3, "B": 2}, restore_stock=True)
    assert plan.cancelled == []
    assert [(f.shipment_id, f.reason) for f in plan.failed] == [(shipment.shipment_id, "shipment already partly shipped")]
    assert plan.release == {"B": 2}
