"""Split and merge without I/O: what moves, what the source keeps, and what one merged order is made of."""

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ordermesh_contracts import MovedLine, OrderAccepted, ShopOrderSubmitted, SplitOrder
from ordermesh_orders.domain.fees import FeeTable
from ordermesh_orders.domain.intake import merchandise_total, rejection_reasons
from ordermesh_orders.domain.split_merge import (
    merge_refusals,
    merged_order,
    plan_split,
    split_off_order,
)
from ordermesh_orders.domain.staff import Refusal

DATA = Path(__file__).parent / "data"
MATCHA, CHAWAN = "MATCHA-UJI-40G", "CHAWAN-KIYOMIZU"
NOW = datetime(2025, 3, 14, 10, 0, tzinfo=timezone.utc)


def accepted(number: str = "A-1", **changes) -> OrderAccepted:
    submitted = ShopOrderSubmitted.model_validate(json.loads((DATA / "shop_order_card.json").read_text(encoding="utf-8")))
    order = OrderAccepted(
        order_id=uuid.uuid4(), shop_id=submitted.shop_id, channel=submitted.channel, external_order_no=number,
        currency=submitted.currency, customer=submitted.customer, deliveries=submitted.deliveries,
        charges=submitted.charges, merchandise_total=merchandise_total(submitted), payment=submitted.payment,
    )
    return order.model_copy(update=changes)


def split(*moves: MovedLine, into: str = "delivery", **fields) -> SplitOrder:
    return SplitOrder(shop_id="kyoto-tea", issued_by="staff:test", order_id=uuid.uuid4(), lines=list(moves), into=into, **fields)


def test_a_split_into_a_delivery_group_moves_units_and_keeps_the_totals() -> None:
    order = accepted()
    plan, lines = plan_split(order.deliveries, order.charges, split(MovedLine(sku=MATCHA, quantity=1), requested_date="2025-03-20"), {}, set())
    assert sorted((line.sku, line.quantity) for line in plan.deliveries[0].lines) == [(CHAWAN, 1), (MATCHA, 1)]
    assert [(line.sku, line.quantity, line.line_discount) for line in plan.deliveries[1].lines] == [(MATCHA, 1, 0)]
    assert str(plan.deliveries[1].requested_date) == "2025-03-20"
    assert plan.charges == order.charges and plan.merchandise_total == order.merchandise_total
    assert [(c.delivery_index, c.change, c.previous_quantity, c.quantity) for c in plan.changes] == [
        (0, "changed", 2, 1), (1, "added", 0, 1)
    ]
    assert [line.sku for line in lines] == [MATCHA]


def test_a_whole_line_takes_its_discount_along() -> None:
    order = accepted()
    plan, _ = plan_split(order.deliveries, order.charges, split(MovedLine(sku=MATCHA, quantity=2)), {}, set())
    assert plan.deliveries[1].lines[0].line_discount == 200
    assert plan.merchandise_total == order.merchandise_total


def test_a_split_into_an_order_lowers_the_source_and_makes_a_consistent_new_order() -> None:
    order = accepted()
    command = split(MovedLine(sku=CHAWAN, quantity=1), into="order", shipping_fee=550)
    plan, lines = plan_split(order.deliveries, order.charges, command, {}, set())
    assert plan.charges.total == order.charges.total - 5500 and len(plan.deliveries) == 1
    new = split_off_order(order, command, lines, 1, NOW)
    assert new.external_order_no == "A-1-S1" and new.payment == order.payment and new.customer == order.customer
    assert new.charges.total == 5500 + 550 and rejection_reasons(new) == []


def test_a_split_refuses_more_units_than_the_line_has_shipped_units_and_an_emptied_delivery() -> None:
    order = accepted()
    with pytest.raises(Refusal) as refused:
        plan_split(order.deliveries, order.charges, split(MovedLine(sku=MATCHA, quantity=3)), {}, set())
    assert refused.value.reasons == ["delivery 0 sku MATCHA-UJI-40G: moves more than the 2 units it has"]
    with pytest.raises(Refusal) as refused:
        plan_split(order.deliveries, order.charges, split(MovedLine(sku=MATCHA, quantity=1)), {(0, MATCHA): 2}, set())
    assert "a shipped quantity can't be reduced" in refused.value.reasons[0]
    with pytest.raises(Refusal) as refused:
        plan_split(order.deliveries, order.charges, split(MovedLine(sku=MATCHA, quantity=2), MovedLine(sku=CHAWAN, quantity=1), into="order"), {}, set())
    assert refused.value.reasons == ["delivery 0 would have no lines left (set them to 0 to keep the record, or cancel)"]


def test_merging_combines_lines_takes_one_shipping_fee_and_adds_discounts_and_points() -> None:
    first, second = accepted("A-1"), accepted("A-2")
    merged = merged_order([first, second], None, "-M1", NOW)
    assert merged.external_order_no == "A-1-M1"
    assert [(line.sku, line.quantity, line.line_discount) for line in merged.deliveries[0].lines] == [(MATCHA, 4, 400), (CHAWAN, 2, 0)]
    charges = merged.charges
    assert (charges.shipping_fee, charges.order_discount, charges.points_used) == (660, 1000, 240)
    assert charges.total == 2 * (2 * 2160 - 200 + 5500) + 660 - 1000 - 240
    assert rejection_reasons(merged) == []
    assert merged_order([first, second], 0, "-M1", NOW).charges.total == charges.total - 660


def test_merging_refuses_other_customers_destinations_or_methods_and_different_prices() -> None:
    first = accepted("A-1")
    other = first.customer.model_copy(update={"customer_id": "C-OTHER"})
    moved = first.deliveries[0].model_copy(update={"address": first.deliveries[0].address.model_copy(update={"line1": "別の住所 1-1"})})
    assert merge_refusals([first, accepted("A-2", customer=other)]) == ["the orders differ in customer"]
    assert merge_refusals([first, accepted("A-2", deliveries=[moved])]) == ["the orders differ in destination", "every delivery must go to one address"]
    assert merge_refusals([first, accepted("A-2")]) == []
    pricier = first.deliveries[0].model_copy(update={"lines": [first.deliveries[0].lines[0].model_copy(update={"unit_price": 9999})]})
    with pytest.raises(Refusal) as refused:
        merged_order([first, accepted("A-2", deliveries=[pricier])], None, "-M1", NOW)
    assert refused.value.reasons == ["sku MATCHA-UJI-40G has different prices in the orders"]


def test_merging_takes_the_fee_from_the_shops_table_for_the_merged_lines_unless_staff_give_one() -> None:
    first, second = accepted("A-1"), accepted("A-2")  # 東京都, 9620 of merchandise each, 660 shipping each
    merchandise = 2 * (2 * 2160 - 200 + 5500)
    below = FeeTable(fee=800, by_prefecture={"北海道": 1320}, free_from=merchandise + 1)
    merged = merged_order([first, second], None, "-M1", NOW, below)
    assert merged.charges.shipping_fee == 800
    assert merged.charges.total == merchandise + 800 - 1000 - 240 and rejection_reasons(merged) == []
    free = FeeTable(fee=800, free_from=merchandise)
    assert merged_order([first, second], None, "-M1", NOW, free).charges.shipping_fee == 0
    assert merged_order([first, second], 550, "-M1", NOW, free).charges.shipping_fee == 550


def test_a_merge_to_a_remote_island_pays_the_tables_surcharge_though_its_merchandise_ships_free() -> None:
    island = accepted("A-1").deliveries[0].address.model_copy(update={"postal_code": "952-0011", "prefecture": "新潟県"})
    first, second = (accepted(n, deliveries=[accepted().deliveries[0].model_copy(update={"address": island})]) for n in ("A-1", "A-2"))
    table = FeeTable(fee=800, free_from=10_000, remote_island_surcharge=1100)
    assert merged_order([first, second], None, "-M1", NOW, table).charges.shipping_fee == 1100


def test_a_new_address_a_split_sends_units_to_gets_the_intake_checks() -> None:
    from ordermesh_orders.adapters.postal import japan_post_lookup
    from ordermesh_orders.domain.intake import new_address_checks

    good = accepted().deliveries[0].address
    assert new_address_checks(good, "delivery 1", japan_post_lookup) == ({}, [])
    wrong_city = good.model_copy(update={"city": "札幌市"})
    assert new_address_checks(wrong_city, "delivery 1", japan_post_lookup) == ({"address": "error"}, ["address_may_be_wrong"])
    sado = good.model_copy(update={"postal_code": "952-0011", "prefecture": "新潟県", "city": "佐渡市"})
    assert new_address_checks(sado, "delivery 1", japan_post_lookup) == ({}, ["remote_island", "relay_area"])


def test_an_order_split_into_two_deliveries_to_the_same_address_can_still_be_merged() -> None:
    first = accepted("A-1")
    two_groups = first.model_copy(update={"deliveries": [*first.deliveries, first.deliveries[0]]})
    assert merge_refusals([two_groups, accepted("A-2")]) == []
