"""The shipping domain without I/O: allocation against available stock, and stable shipment ids."""

from uuid import UUID

from ordermesh_shipping.domain.allocation import plan_allocation, shipment_id_for

ORDER = UUID("8e0f4c3b-2a1d-5e6f-9a8b-7c6d5e4f3a2b")


def test_enough_stock_for_every_sku_is_a_full_allocation_of_exactly_what_was_ordered() -> None:
    plan = plan_allocation({"MATCHA-UJI-40G": 2, "CHAWAN-KIYOMIZU": 1}, {"MATCHA-UJI-40G": 50, "CHAWAN-KIYOMIZU": 1})
    assert plan.coverage == "full"
    assert plan.quantities == {"MATCHA-UJI-40G": 2, "CHAWAN-KIYOMIZU": 1}


def test_too_little_of_one_sku_is_a_partial_allocation_taking_what_there_is() -> None:
    plan = plan_allocation({"MATCHA-UJI-40G": 3, "CHAWAN-KIYOMIZU": 1}, {"MATCHA-UJI-40G": 2, "CHAWAN-KIYOMIZU": 1})
    assert plan.coverage == "partial"
    assert plan.quantities == {"MATCHA-UJI-40G": 2, "CHAWAN-KIYOMIZU": 1}


def test_a_sku_out_of_stock_is_left_out_of_a_partial_allocation() -> None:
    plan = plan_allocation({"MATCHA-UJI-40G": 2, "CHAWAN-KIYOMIZU": 1}, {"MATCHA-UJI-40G": 2, "CHAWAN-KIYOMIZU": 0})
    assert plan.coverage == "partial"
    assert plan.quantities == {"MATCHA-UJI-40G": 2}


def test_no_stock_at_all_is_no_allocation() -> None:
    plan = plan_allocation({"MATCHA-UJI-40G": 2}, {"MATCHA-UJI-40G": 0})
    assert plan.coverage == "none"
    assert plan.quantities == {}


def test_a_sku_the_warehouse_does_not_know_counts_as_out_of_stock() -> None:
    plan = plan_allocation({"MATCHA-UJI-40G": 2, "NEW-ITEM": 1}, {"MATCHA-UJI-40G": 5})
    assert plan.coverage == "partial"
    assert plan.quantities == {"MATCHA-UJI-40G": 2}
    assert plan_allocation({"NEW-ITEM": 1}, {}).coverage == "none"


def test_negative_availability_is_treated_as_none_available() -> None:
    plan = plan_allocation({"MATCHA-UJI-40G": 2, "CHAWAN-KIYOMIZU": 1}, {"MATCHA-UJI-40G": -3, "CHAWAN-KIYOMIZU": 4})
    assert plan.coverage == "partial"
    assert plan.quantities == {"CHAWAN-KIYOMIZU": 1}


def test_negative_availability_of_one_sku_does_not_offset_another_into_a_full_allocation() -> None:
    plan = plan_allocation({"A": 1, "B": 1}, {"A": -1, "B": 5})
    assert plan.coverage != "full"


def test_the_shipment_id_is_the_same_for_the_same_order_and_delivery() -> None:
    assert shipment_id_for(ORDER, 0) == shipment_id_for(UUID(str(ORDER)), 0)


def test_the_shipment_id_differs_per_delivery_and_per_order() -> None:
    other = UUID("8e0f4c3b-2a1d-5e6f-9a8b-7c6d5e4f3a2c")
    assert len({shipment_id_for(ORDER, 0), shipment_id_for(ORDER, 1), shipment_id_for(other, 0)}) == 3
