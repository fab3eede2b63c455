"""Returns after shipping without I/O: what a return books, what it is worth, and every reason one is refused."""

import json
import uuid
from pathlib import Path

import pytest
from ordermesh_contracts import ReturnItems, ReturnLine, Stage
from ordermesh_orders.domain.edits import merchandise_total_of, net_quantity
from ordermesh_orders.domain.returns import plan_return, return_refusals
from ordermesh_orders.domain.staff import Refusal
from ordermesh_contracts import ShopOrderSubmitted

DATA = Path(__file__).parent / "data"
MATCHA, CHAWAN = "MATCHA-UJI-40G", "CHAWAN-KIYOMIZU"


def card_order() -> ShopOrderSubmitted:
    return ShopOrderSubmitted.model_validate(json.loads((DATA / "shop_order_card.json").read_text(encoding="utf-8")))


def returning(*lines: tuple[str, int]) -> ReturnItems:
    return ReturnItems(
        shop_id="kyoto-tea", issued_by="staff:test", order_id=uuid.uuid4(), restock=True, reason="came back",
        lines=[ReturnLine(sku=sku, quantity=units) for sku, units in lines],
    )


def test_a_part_return_books_a_negative_line_takes_its_share_of_the_discount_and_lowers_the_total_by_its_worth():
    order = card_order()
    shipped = {(0, MATCHA): 2, (0, CHAWAN): 1}

    plan = plan_return(order.deliveries, order.charges, returning((MATCHA, 1)), shipped, {})

    assert plan.amount == 2160 - 100 and plan.charges.total == order.charges.total - 2060
    assert [(line.sku, line.quantity, line.amount) for line in plan.lines] == [(MATCHA, 1, 2060)]
    lines = plan.deliveries[0].lines
    assert net_quantity(lines, MATCHA) == 1 and [l.line_discount for l in lines if l.sku == MATCHA] == [100, 0]
    assert plan.merchandise_total == merchandise_total_of(order.deliveries) - 2060
    assert [(c.change, c.previous_quantity, c.quantity) for c in plan.changes] == [("returned", 2, 1)]
    # the second unit takes the rest of the discount: two returns are worth what the line cost
    again = plan_return(plan.deliveries, plan.charges, returning((MATCHA, 1)), shipped, {(0, MATCHA): 1})
    assert again.amount == 2160 - 100 and again.amount + plan.amount == 2 * 2160 - 200


def test_a_return_of_more_than_shipped_and_not_yet_returned_or_of_an_unknown_line_is_refused_with_every_reason():
    order = card_order()
    with pytest.raises(Refusal) as refused:
        plan_return(
            order.deliveries, order.charges, returning((MATCHA, 2), (CHAWAN, 1), ("NOPE", 1)),
            {(0, MATCHA): 2}, {(0, MATCHA): 1},
        )
    assert refused.value.reasons == [
        f"delivery 0 sku {MATCHA}: 1 shipped and not yet returned, can't return 2",
        f"delivery 0 sku {CHAWAN}: 0 shipped and not yet returned, can't return 1",
        "delivery 0 sku NOPE: the delivery has no such line",
    ]


def test_an_order_nothing_of_which_shipped_or_a_cancelled_one_takes_no_return():
    assert return_refusals(Stage.READY_TO_SHIP, {}) == ["nothing of the order has shipped yet: edit or cancel it instead"]
    assert return_refusals(Stage.CANCELLED, {(0, MATCHA): 1}) == ["a cancelled order takes no returns"]
    assert return_refusals(Stage.SHIPPING, {(0, MATCHA): 1}) == []
