"""Deciding an order's shipping cancellation: which shipments are cancelled, which fail, what stock goes back."""

from uuid import uuid4

from ordermesh_shipping.domain.cancellation import (
    ShipmentToCancel,
    needs_warehouse_cancel,
    plan_cancellation,
)


def shipment(status: str, index: int = 0, **lines: int) -> ShipmentToCancel:
    return ShipmentToCancel(uuid4(), index, status, dict(lines))


def test_only_a_requested_shipment_is_cancelled_at_the_warehouse() -> None:
    assert [s for s in ("requesting", "requested", "request_failed", "shipped", "delivered", "cancelled") if needs_warehouse_cancel(s)] == ["requested"]


def test_an_order_not_yet_requested_releases_everything_allocated_when_stock_is_restored() -> None:
    plan = plan_cancellation([], {}, {"A": 2, "B": 1}, restore_stock=True)
    assert (plan.cancelled, plan.failed, plan.release) == ([], [], {"A": 2, "B": 1})


def test_without_restore_stock_nothing_is_released_but_shipments_are_still_cancelled() -> None:
    requested = shipment("requested", A=2)
    plan = plan_cancellation([requested], {requested.shipment_id: None}, {"A": 2}, restore_stock=False)
    assert (plan.cancelled, plan.failed, plan.release) == ([requested.shipment_id], [], {})


def test_a_shipment_the_warehouse_refuses_to_cancel_fails_and_keeps_its_units_allocated() -> None:
    first, second = shipment("requested", 0, A=2), shipment("requested", 1, A=1, B=3)
    answers = {first.shipment_id: None, second.shipment_id: "warehouse answered 409: already_shipped"}
    plan = plan_cancellation([first, second], answers, {"A": 3, "B": 3}, restore_stock=True)
    assert plan.cancelled == [first.shipment_id]
    assert [(f.shipment_id, f.delivery_index, f.reason) for f in plan.failed] == [
        (second.shipment_id, 1, "warehouse answered 409: already_shipped")
    ]
    assert plan.release == {"A": 2}


def test_a_shipment_that_shipped_meanwhile_fails_even_if_the_warehouse_was_asked_first() -> None:
    shipped = shipment("shipped", A=2)
    plan = plan_cancellation([shipped], {shipped.shipment_id: None}, {"A": 2}, restore_stock=True)
    assert [f.reason for f in plan.failed] == ["shipment already shipped"]
    assert plan.release == {}


def test_shipments_the_warehouse_never_took_are_cancelled_without_asking_it() -> None:
    failed, requesting = shipment("request_failed", 0, A=1), shipment("requesting", 1, B=1)
    plan = plan_cancellation([failed, requesting], {}, {"A": 1, "B": 1}, restore_stock=True)
    assert plan.cancelled == [failed.shipment_id, requesting.shipment_id]
    assert plan.release == {"A": 1, "B": 1}


def test_a_requested_shipment_the_warehouse_was_not_asked_about_is_not_counted_as_cancelled() -> None:
    requested = shipment("requested", A=1)
    plan = plan_cancellation([requested], {}, {"A": 1}, restore_stock=True)
    assert plan.cancelled == [] and len(plan.failed) == 1
    assert plan.release == {}


def test_an_already_cancelled_shipment_is_neither_counted_again_nor_failed() -> None:
    done = shipment("cancelled", A=1)
    plan = plan_cancellation([done], {}, {}, restore_stock=True)
    assert (plan.cancelled, plan.failed, plan.release) == ([], [], {})


def test_a_partly_allocated_order_releases_only_what_it_holds() -> None:
    requested = shipment("requested", A=5)
    plan = plan_cancellation([requested], {requested.shipment_id: None}, {"A": 2}, restore_stock=True)
    assert plan.release == {"A": 2}
