"""The pure rules of honouring an order edit: net lines, changed groups, warehouse decisions and how stock follows."""

from datetime import time

from ordermesh_shipping.domain.allocation import from_allocation
from ordermesh_shipping.domain.editing import (
    after_warehouse,
    changed_groups,
    demand_of,
    effective_lines,
    net_lines,
    plan_groups,
    plan_stock,
)
from ordermesh_shipping.domain.shop_settings import settings_columns, settings_problems


def test_a_negative_line_kept_on_record_nets_against_the_same_sku_and_zero_is_nothing_to_ship():
    lines = net_lines([[("A", 3), ("A", -1), ("B", 0)], [("C", 2), ("C", -2)]])
    assert lines == {(0, "A"): 2}


def test_only_delivery_groups_whose_net_lines_differ_are_changed():
    current = {(0, "A"): 2, (1, "B"): 1}
    assert changed_groups(current, {(0, "A"): 2, (1, "B"): 3}) == [1]
    assert changed_groups(current, {(0, "A"): 2, (1, "B"): 1, (2, "C"): 1}) == [2]
    assert changed_groups(current, {(0, "A"): 2}) == [1]


def test_a_shipped_group_is_refused_a_requested_one_reissued_or_withdrawn_and_an_unrequested_one_only_recorded():
    plan = plan_groups([0, 1, 2, 3], {0: "shipped", 1: "requested", 2: "requested"}, {(1, "A"): 2, (3, "B"): 1})
    assert plan.refused == {0: "delivery 0 already shipped"}
    assert (plan.to_cancel, plan.to_reissue, plan.to_withdraw) == ([1, 2], [1], [2])


def test_a_cancel_the_warehouse_refused_or_a_shipment_that_shipped_meanwhile_refuses_the_group():
    plan = plan_groups([0, 1, 2], {0: "requested", 1: "requested", 2: "requested"}, {(0, "A"): 1, (1, "A"): 1, (2, "A"): 1})
    final = after_warehouse(
        plan,
        {0: None, 1: "warehouse answered 409: already_picked", 2: None},
        {0: "requested", 1: "requested", 2: "shipped"},
    )
    assert final.refused == {1: "delivery 1: warehouse answered 409: already_picked", 2: "delivery 2 already shipped"}
    assert final.to_reissue == [0]


def test_refused_groups_keep_their_lines_and_the_rest_take_the_edit():
    current = {(0, "A"): 2, (1, "B"): 1}
    edited = {(0, "A"): 5, (1, "B"): 4}
    lines = effective_lines(current, edited, {1})
    assert lines == {(0, "A"): 5, (1, "B"): 1}
    assert demand_of({**lines, (1, "A"): 1}) == {"A": 6, "B": 1}


def test_stock_releases_what_the_edit_no_longer_needs_and_tops_up_what_it_adds_from_what_is_free():
    plan = plan_stock({"A": 1, "B": 5}, {"A": 3, "B": 2, "C": 1}, {"B": 2}, adjust=True)
    assert plan.release == {"A": 2, "C": 1}
    assert plan.allocate == {"B": 2}
    assert plan.coverage == "partial"


def test_without_adjusting_stock_nothing_moves_and_the_coverage_says_how_far_the_old_allocation_reaches():
    plan = plan_stock({"A": 3}, {"A": 2}, {"A": 100}, adjust=False)
    assert (plan.release, plan.allocate, plan.coverage) == ({}, {}, "partial")


def test_units_shipped_beyond_the_orders_allocation_do_not_leave_other_orders_allocations():
    assert from_allocation({"A": 3}, {"A": 2}, {}) == {"A": 2}
    assert from_allocation({"A": 2}, {"A": 5}, {"A": 3}) == {"A": 2}
    assert from_allocation({"A": 2}, {"A": 3}, {"A": 3}) == {"A": 0}


def test_shop_settings_are_refused_with_every_reason():
    problems = settings_problems(time_zone="Mars/Olympus", closed_weekdays=[0, 1, 2, 3, 4, 5, 6, 7], current_closed_weekdays=frozenset())
    assert problems == [
        "unknown time zone 'Mars/Olympus' (an IANA name such as Asia/Tokyo)",
        "weekdays [7] are outside 0..6 (Monday = 0)",
        "every weekday is closed: the shop would never ship",
    ]
    assert settings_problems(time_zone="Asia/Tokyo", closed_weekdays=None, current_closed_weekdays=frozenset({5, 6})) == []


def test_shop_settings_left_out_are_not_set():
    assert settings_columns(
        time_zone=None, cutoff="09:30", closed_weekdays=None, closures=None, warehouse_prefecture=None, shipper_json=None
    ) == {"cutoff": time(9, 30)}
