"""What an order waits for at each stage: the flag, its owner (a service or staff), or nothing once it is final."""

from ordermesh_contracts import PaymentMethod, Stage
from ordermesh_orders.domain.progress import OrderState, initial_flags
from ordermesh_orders.domain.waiting import waiting_for


def state(stage: Stage, method: PaymentMethod = PaymentMethod.CARD, **flags: str) -> OrderState:
    return OrderState(stage=stage, payment_method=method, flags={**initial_flags(method, "ok"), **flags})


def owners(waits) -> list[tuple[str, str, str]]:
    return [(w.flag, w.value, w.owner) for w in waits]


def test_a_card_order_awaiting_payment_waits_for_payments_to_authorize_and_for_staff_once_it_failed():
    assert owners(waiting_for(state(Stage.AWAITING_PAYMENT))) == [("card_authorization", "none", "payments")]
    assert owners(waiting_for(state(Stage.AWAITING_PAYMENT, card_authorization="failed"))) == [("card_authorization", "failed", "staff")]


def test_a_bank_transfer_order_waits_for_the_customers_payment():
    waits = waiting_for(state(Stage.AWAITING_PAYMENT, PaymentMethod.BANK_TRANSFER))
    assert owners(waits) == [("prepaid_payment", "none", "customer")]


def test_an_order_in_review_names_every_check_still_open_and_its_blocking_tasks():
    order = OrderState(
        stage=Stage.REVIEW, payment_method=PaymentMethod.CARD,
        flags={**initial_flags(PaymentMethod.CARD, "error", requested_date=True), "customer": "watch_listed"},
        blocking_tasks=2,
    )
    assert owners(waiting_for(order)) == [
        ("customer", "watch_listed", "staff"), ("address", "error", "staff"), ("delivery_date", "pending", "shipping"), ("tasks", "2", "staff"),
    ]


def test_a_shipped_order_waits_for_capture_points_and_the_shipped_mail_but_not_for_settled_ones():
    waits = waiting_for(state(Stage.SHIPPED, shipping="shipped", capture="done", points="provisional", mail_shipped="unsent"))
    assert owners(waits) == [("points", "provisional", "points"), ("mail_shipped", "unsent", "notify")]


def test_held_manual_and_final_orders_wait_for_staff_or_nothing():
    assert owners(waiting_for(state(Stage.ON_HOLD))) == [("stage", "on_hold", "staff")]
    manual = OrderState(stage=Stage.AWAITING_ALLOCATION, payment_method=PaymentMethod.CARD, flags=initial_flags(PaymentMethod.CARD, "ok"), mode="manual")
    assert owners(waiting_for(manual)) == [("mode", "manual", "staff")]
    assert waiting_for(state(Stage.COMPLETED)) == [] and waiting_for(state(Stage.CANCELLED)) == []


def test_allocation_and_shipping_stages_wait_for_shipping():
    assert owners(waiting_for(state(Stage.AWAITING_ALLOCATION, allocation="partial"))) == [("allocation", "partial", "shipping")]
    assert owners(waiting_for(state(Stage.SHIPPING, shipping="partly_shipped"))) == [("shipping", "partly_shipped", "shipping")]
