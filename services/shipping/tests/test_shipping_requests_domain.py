"""Which delivery groups of an order ready to ship go to the warehouse: plain function calls."""

from uuid import uuid4

from ordermesh_shipping.domain.shipment_requests import Group, Shipment, plan_requests


def group(index: int, holds=()) -> Group:
    return Group(index=index, carrier="yamato", lines=[("MATCHA", 1)], cash_on_delivery=None, holds=list(holds))


def test_a_requesting_group_goes_to_the_warehouse_a_requested_one_stands_a_held_one_waits_and_a_shipped_one_is_left_alone() -> None:
    groups = [group(3), group(0), group(1, holds=[("delivery_date", "too early")]), group(2)]
    shipments = {
        0: Shipment(uuid4(), "requesting", None),
        1: Shipment(uuid4(), "held", None),
        2: Shipment(uuid4(), "shipped", "wr_2"),
        3: Shipment(uuid4(), "requested", "wr_3"),
    }
    plan = plan_requests(groups, shipments)
    assert [(g.index, shipment_id) for g, shipment_id in plan.to_request] == [(0, shipments[0].shipment_id)]
    assert [(g.index, shipment) for g, shipment in plan.standing] == [(3, shipments[3])]
    assert [g.index for g in plan.held] == [1]


def test_groups_are_planned_in_delivery_order() -> None:
    groups = [group(index) for index in (2, 0, 1)]
    plan = plan_requests(groups, {index: Shipment(uuid4(), "requesting", None) for index in range(3)})
    assert [g.index for g, _ in plan.to_request] == [0, 1, 2]
