"""Order edits without I/O: the plan of an edited order (lines, charges, diff) and every reason an edit is refused."""

import json
import uuid
from pathlib import Path

import pytest
from ordermesh_contracts import (
    Charges,
    DeliveryGroup,
    EditOrder,
    LineChange,
    PaymentMethod,
    ShopOrderSubmitted,
    Stage,
)
from ordermesh_orders.domain.edits import (
    balance_of,
    edit_refusals,
    flags_after_edit,
    fully_shipped_deliveries,
    merchandise_total_of,
    net_quantity,
    plan_edit,
)
from ordermesh_orders.domain.staff import Refusal

DATA = Path(__file__).parent / "data"
MATCHA, CHAWAN = "MATCHA-UJI-40G", "CHAWAN-KIYOMIZU"


def card_order() -> ShopOrderSubmitted:
    return ShopOrderSubmitted.model_validate(json.loads((DATA / "shop_order_card.json").read_text(encoding="utf-8")))


def edit(*lines: LineChange, adjust_stock: bool = True, **charges) -> EditOrder:
    return EditOrder(
        shop_id="kyoto-tea", issued_by="staff:test", order_id=uuid.uuid4(), lines=list(lines), adjust_stock=adjust_stock,
        reason="customer called", **charges,
    )


def plan(command: EditOrder, shipped=None, shipped_deliveries=None, order: ShopOrderSubmitted | None = None):
    order = order or card_order()
    return plan_edit(order.deliveries, order.charges, command, shipped or {}, shipped_deliveries or set())


def refusal_of(command: EditOrder, **kwargs) -> list[str]:
    with pytest.raises(Refusal) as refused:
        plan(command, **kwargs)
    return refused.value.reasons


# The card order: MATCHA 2 × 2160 - 200, CHAWAN 1 × 5500; shipping 660, order discount 500, points 120 → total 9660.


def test_raising_a_quantity_recomputes_merchandise_and_total_and_records_the_diff() -> None:
    result = plan(edit(LineChange(sku=MATCHA, quantity=3)))
    assert result.merchandise_total == 3 * 2160 - 200 + 5500
    assert result.charges.total == 9660 + 2160
    [diff] = result.changes
    assert (diff.change, diff.previous_quantity, diff.quantity, diff.unit_price) == ("changed", 2, 3, 2160)


def test_an_added_line_needs_name_price_and_tax_rate_and_then_counts() -> None:
    assert refusal_of(edit(LineChange(sku="GIFT-BOX", quantity=1))) == [
        "delivery 0 sku GIFT-BOX: an added line needs name, unit_price, tax_rate_percent"
    ]
    result = plan(edit(LineChange(sku="GIFT-BOX", quantity=2, name="Gift box", unit_price=330, tax_rate_percent=10)))
    assert result.deliveries[0].lines[-1].sku == "GIFT-BOX"
    assert result.charges.total == 9660 + 660
    assert result.changes[0].change == "added"


def test_removing_an_unshipped_line_drops_it_and_a_shipped_line_is_refused() -> None:
    result = plan(edit(LineChange(sku=CHAWAN, remove=True)))
    assert [line.sku for line in result.deliveries[0].lines] == [MATCHA]
    assert result.charges.total == 9660 - 5500
    reasons = refusal_of(edit(LineChange(sku=CHAWAN, remove=True)), shipped={(0, CHAWAN): 1})
    assert reasons == ["delivery 0 sku CHAWAN-KIYOMIZU: 1 shipped: a shipped line can't be removed"]


def test_setting_a_line_to_zero_keeps_it_on_record_with_nothing_to_pay() -> None:
    result = plan(edit(LineChange(sku=MATCHA, quantity=0)))
    matcha = next(line for line in result.deliveries[0].lines if line.sku == MATCHA)
    assert (matcha.quantity, matcha.line_discount) == (0, 0)
    assert result.charges.total == 9660 - (2 * 2160 - 200)
    assert result.changes[0].change == "returned"


def test_booking_a_cancelled_quantity_keeps_the_line_and_adds_a_negative_line_beside_it() -> None:
    result = plan(edit(LineChange(sku=MATCHA, book_cancelled=1)))
    lines = [line for line in result.deliveries[0].lines if line.sku == MATCHA]
    assert sorted(line.quantity for line in lines) == [-1, 2]
    assert net_quantity(result.deliveries[0].lines, MATCHA) == 1
    assert result.charges.total == 9660 - 2160
    assert (result.changes[0].previous_quantity, result.changes[0].quantity) == (2, 1)
    # a second booking adds to the same negative line; with nothing left to pay the line's discount must go too
    booked_once = card_order().model_copy(update={"deliveries": result.deliveries})
    assert refusal_of(edit(LineChange(sku=MATCHA, book_cancelled=1)), order=booked_once) == [
        "delivery 0 sku MATCHA-UJI-40G: discount 200 exceeds the line amount 0"
    ]
    again = plan(edit(LineChange(sku=MATCHA, book_cancelled=1, line_discount=0)), order=booked_once)
    assert sorted(line.quantity for line in again.deliveries[0].lines if line.sku == MATCHA) == [-2, 2]
    assert again.merchandise_total == 5500


def test_a_shipped_quantity_cant_be_reduced_or_booked_as_cancelled() -> None:
    shipped = {(0, MATCHA): 2}
    assert refusal_of(edit(LineChange(sku=MATCHA, quantity=1)), shipped=shipped) == [
        "delivery 0 sku MATCHA-UJI-40G: 2 shipped: a shipped quantity can't be reduced (asked for 1)"
    ]
    assert refusal_of(edit(LineChange(sku=MATCHA, book_cancelled=1)), shipped=shipped) == [
        "delivery 0 sku MATCHA-UJI-40G: only 0 unshipped units can be booked as cancelled"
    ]
    assert plan(edit(LineChange(sku=MATCHA, quantity=3)), shipped=shipped).changes[0].quantity == 3


def test_a_delivery_that_shipped_takes_no_edit() -> None:
    reasons = refusal_of(edit(LineChange(sku="NEW", quantity=1, name="n", unit_price=1, tax_rate_percent=10)), shipped_deliveries={0})
    assert reasons == ["delivery 0 sku NEW: delivery 0 already shipped"]


def test_fees_and_points_change_only_when_set_and_shipping_is_not_recomputed() -> None:
    result = plan(edit(shipping_fee=0, points_used=0))
    assert result.charges == Charges(shipping_fee=0, payment_fee=0, order_discount=500, points_used=0, total=9660 - 660 + 120)
    assert result.changes == []
    unchanged_fee = plan(edit(LineChange(sku=MATCHA, quantity=5)))
    assert unchanged_fee.charges.shipping_fee == 660


def test_manual_line_discounts_can_be_set_removed_but_not_above_the_line() -> None:
    result = plan(edit(LineChange(sku=MATCHA, line_discount=0)))
    assert result.charges.total == 9660 + 200
    assert (result.changes[0].change, result.changes[0].previous_line_discount, result.changes[0].line_discount) == ("discount_changed", 200, 0)
    assert refusal_of(edit(LineChange(sku=CHAWAN, line_discount=5501))) == [
        "delivery 0 sku CHAWAN-KIYOMIZU: discount 5501 exceeds the line amount 5500"
    ]


def test_every_reason_is_given_at_once_and_nothing_is_planned() -> None:
    reasons = refusal_of(
        edit(
            LineChange(delivery_index=3, sku=MATCHA, quantity=1),
            LineChange(sku="GHOST", remove=True),
            LineChange(sku=CHAWAN, quantity=2, book_cancelled=1),
            points_used=100_000,
        )
    )
    assert reasons == [
        "delivery 3 sku MATCHA-UJI-40G: the order has no delivery 3",
        "delivery 0 sku GHOST: the delivery has no such line",
        "delivery 0 sku CHAWAN-KIYOMIZU: give one of quantity, book_cancelled or remove",
        f"the new total would be negative ({9660 + 120 - 100_000}): lower the points used",
    ]


def test_an_edit_that_changes_nothing_is_refused() -> None:
    assert refusal_of(edit(shipping_fee=660)) == ["the edit changes nothing"]


def test_removing_every_line_of_a_delivery_is_refused() -> None:
    reasons = refusal_of(edit(LineChange(sku=MATCHA, remove=True), LineChange(sku=CHAWAN, remove=True)))
    assert reasons == ["delivery 0 would have no lines left (set them to 0 to keep the record, or cancel)"]


@pytest.mark.parametrize(
    ("stage", "method", "flags", "expected"),
    [
        (Stage.CANCELLED, PaymentMethod.CARD, {}, ["a cancelled order can't be edited"]),
        (Stage.COMPLETED, PaymentMethod.CARD, {}, ["a completed order can't be edited"]),
        (Stage.AWAITING_PAYMENT, PaymentMethod.CARD, {"card_authorization": "none"},
         ["the card authorization is still pending: edit once the payment is authorized"]),
        (Stage.AWAITING_PAYMENT, PaymentMethod.DEFERRED, {"credit_check": "pending"},
         ["the credit check is still pending: edit once the payment is authorized"]),
        (Stage.SHIPPING, PaymentMethod.CARD, {"card_authorization": "authorized"}, []),
        (Stage.REVIEW, PaymentMethod.BANK_TRANSFER, {"prepaid_payment": "requested"}, []),
    ],
)
def test_whether_an_order_is_editable_at_all(stage, method, flags, expected) -> None:
    assert edit_refusals(stage, method, flags) == expected


def test_a_delivery_counts_as_shipped_only_when_every_unit_shipped() -> None:
    deliveries = card_order().deliveries
    assert fully_shipped_deliveries(deliveries, {(0, MATCHA): 2}) == set()
    assert fully_shipped_deliveries(deliveries, {(0, MATCHA): 2, (0, CHAWAN): 1}) == {0}


def test_balance_is_due_or_owed_only_once_money_was_collected() -> None:
    assert balance_of(10_000, 0) == 0
    assert balance_of(10_000, 9_000) == 1_000
    assert balance_of(8_000, 9_000) == -1_000


def test_flags_an_edit_leaves_pending_until_the_services_answer() -> None:
    before = card_order().charges
    after = before.model_copy(update={"points_used": 0, "total": before.total + 120})
    assert flags_after_edit(before, after, PaymentMethod.CARD, True) == {
        "amount_change": "pending", "points_redemption": "not_applicable", "mail_order_changed": "unsent",
    }
    assert flags_after_edit(before, before, PaymentMethod.CARD, False) == {}


def test_merchandise_total_counts_negative_lines() -> None:
    group: DeliveryGroup = card_order().deliveries[0]
    booked = group.model_copy(update={"lines": [*group.lines, group.lines[0].model_copy(update={"quantity": -1, "line_discount": 0})]})
    assert merchandise_total_of([booked]) == 2 * 2160 - 200 + 5500 - 2160


def test_money_received_outside_a_gateway_beyond_the_new_total_is_a_refund_staff_owe() -> None:
    before = card_order().charges
    after = before.model_copy(update={"total": before.total - 1000})
    assert flags_after_edit(before, after, PaymentMethod.BANK_TRANSFER, False, balance=-1000)["refund"] == "owed"
    assert "refund" not in flags_after_edit(before, after, PaymentMethod.CARD, False, balance=-1000)
    assert "refund" not in flags_after_edit(before, after, PaymentMethod.BANK_TRANSFER, False, balance=0)


def test_the_reversal_of_a_refused_edit_puts_the_delivery_back_and_recomputes_the_total() -> None:
    from ordermesh_orders.domain.edits import reversal_of

    order = card_order()
    edited = plan(edit(LineChange(sku=MATCHA, quantity=3), LineChange(sku="GIFT", quantity=1, name="g", unit_price=330, tax_rate_percent=10)))
    reversed_ = reversal_of(edited.deliveries, order.deliveries, 0, edited.charges)
    assert reversed_.deliveries == order.deliveries
    assert reversed_.charges == order.charges and reversed_.merchandise_total == edited.merchandise_total - 2160 - 330
    assert sorted((c.sku, c.change, c.previous_quantity, c.quantity) for c in reversed_.changes) == [
        ("GIFT", "removed", 1, 0), (MATCHA, "changed", 3, 2)
    ]
    assert reversal_of(order.deliveries, order.deliveries, 0, order.charges) is None
    assert reversal_of(edited.deliveries, order.deliveries, 5, edited.charges) is None
