"""What a cancellation does to each kind of payment, without I/O: void, refund, withdraw, nothing, or a task for staff."""

import pytest
from ordermesh_payments.domain.cancellation import (
    Action,
    CancelPlan,
    PaymentFacts,
    after_gateway,
    amount_due,
    captures_on_shipment,
    plan_cancellation,
    view_balance,
)
from ordermesh_payments.domain.card import CardState, capture_refusals


def card(status: str, *, captured: int = 0, refunded: int = 0) -> PaymentFacts:
    return PaymentFacts("card", status, amount=9660, authorized=9660, captured=captured, refunded=refunded, received=0)


def prepaid(received: int, status: str = "awaiting_payment") -> PaymentFacts:
    return PaymentFacts("bank_transfer", status, amount=9660, authorized=0, captured=0, refunded=0, received=received)


@pytest.mark.parametrize("facts", [card("authorized"), card("captured", captured=9660), prepaid(0), None])
def test_without_cancel_payment_nothing_is_done_or_said_about_money(facts: PaymentFacts | None) -> None:
    assert plan_cancellation(facts, cancel_payment=False) == CancelPlan(Action.SILENT)


@pytest.mark.parametrize("status", ["authorized", "capture_failed"])
def test_an_uncaptured_card_authorization_is_voided_for_its_whole_amount(status: str) -> None:
    assert plan_cancellation(card(status), cancel_payment=True) == CancelPlan(
        Action.VOID, outcome="voided", amount=9660, status="voided"
    )


def test_a_captured_card_is_refunded_what_was_not_refunded_yet() -> None:
    plan = plan_cancellation(card("captured", captured=9660, refunded=660), cancel_payment=True)
    assert (plan.action, plan.outcome, plan.amount) == (Action.REFUND, "refunded", 9000)


@pytest.mark.parametrize(
    "facts",
    [card("voided"), card("authorization_failed"), card("refunded", captured=9660, refunded=9660)],
)
def test_a_card_payment_already_released_failed_or_fully_refunded_has_nothing_to_cancel(facts: PaymentFacts) -> None:
    assert plan_cancellation(facts, cancel_payment=True) == CancelPlan(Action.RECORD, outcome="nothing_to_cancel")


@pytest.mark.parametrize("status", ["authorizing", "capturing"])
def test_a_gateway_call_still_in_flight_is_not_reversed_blindly_but_handed_to_staff(status: str) -> None:
    plan = plan_cancellation(card(status), cancel_payment=True)
    assert plan.action is Action.FAIL
    assert plan.reason.startswith("an authorization" if status == "authorizing" else "a capture")


def test_an_unpaid_prepaid_request_is_withdrawn_for_its_whole_amount_and_nothing_is_owed_back() -> None:
    assert plan_cancellation(prepaid(0), cancel_payment=True) == CancelPlan(
        Action.RECORD, outcome="request_cancelled", amount=9660, refund_owed=0, status="cancelled"
    )


@pytest.mark.parametrize(("received", "withdrawn"), [(4000, 5660), (9660, 0), (10000, 0)])
def test_money_already_received_on_a_prepaid_order_is_owed_back_by_hand(received: int, withdrawn: int) -> None:
    plan = plan_cancellation(prepaid(received, "partly_paid"), cancel_payment=True)
    assert (plan.outcome, plan.amount, plan.refund_owed) == ("request_cancelled", withdrawn, received)


@pytest.mark.parametrize(
    "facts",
    [
        None,
        PaymentFacts("cash_on_delivery", "awaiting_delivery", 9660, 0, 0, 0, 0),
        PaymentFacts("deferred", "credit_check_unsupported", 9660, 0, 0, 0, 0),
        PaymentFacts("points_only", "not_applicable", 0, 0, 0, 0, 0),
    ],
)
def test_cash_on_delivery_deferred_points_only_and_no_payment_at_all_have_nothing_to_cancel(facts) -> None:
    assert plan_cancellation(facts, cancel_payment=True) == CancelPlan(Action.RECORD, outcome="nothing_to_cancel")


def test_a_void_the_gateway_refuses_becomes_a_failure_with_the_gateways_reason() -> None:
    plan = plan_cancellation(card("authorized"), cancel_payment=True)
    assert after_gateway(plan, approved=False, reason="already_captured") == CancelPlan(
        Action.FAIL, reason="void refused by the gateway: already_captured"
    )
    assert after_gateway(plan, approved=True, reason=None).action is Action.RECORD


def test_a_cancelled_order_is_never_captured_by_a_shipment_report_nor_by_staff() -> None:
    assert captures_on_shipment("authorized", cancelled=False)
    assert not captures_on_shipment("authorized", cancelled=True)
    refusals = capture_refusals(CardState("authorized", 9660, 0, 0, cancelled=True), 9660)
    assert refusals == ["order is cancelled; a cancelled order is never captured"]


def test_nothing_is_due_on_a_cancelled_order_so_money_received_afterwards_is_an_over_payment() -> None:
    assert amount_due(9660, cancelled=False) == 9660
    assert amount_due(9660, cancelled=True) == 0


def test_the_staff_balance_of_a_cancelled_order_is_what_was_kept_and_not_given_back() -> None:
    assert view_balance(9660, True, captured=9660, refunded=9660, received=0) == 0
    assert view_balance(9660, True, captured=0, refunded=0, received=9660) == -9660
    assert view_balance(9660, False, captured=9660, refunded=100, received=0) == 0
