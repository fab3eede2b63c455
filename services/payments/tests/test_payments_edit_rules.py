"""The pure rules of order edits and deferred payment: what an edited total does to each kind of payment, when a
credit-check answer counts, when a shipment report captures, and how a deferred payment is cancelled."""

from dataclasses import replace

import pytest
from ordermesh_payments.domain.cancellation import Action, PaymentFacts, after_gateway as after_cancel_gateway, plan_cancellation
from ordermesh_payments.domain.credit import CreditAnswer, CreditStatus, applies, reports_shipment
from ordermesh_payments.domain.edits import EditAction, EditFacts, after_gateway, capture_amount, plan_edit

CARD = EditFacts(
    method="card", status="authorized", amount=10_000, authorized=10_000, authorization_id="auth_1", captured=0,
    refunded=0, received=0, cancelled=False, edit_no=0,
)
CAPTURED = replace(CARD, status="captured", captured=10_000)
PREPAID = replace(CARD, method="bank_transfer", status="awaiting_payment", authorized=0, authorization_id=None)
DEFERRED = replace(CARD, method="deferred", status="credit_approved", authorized=0, authorization_id=None, credit_status="approved")


def test_a_higher_total_on_an_uncaptured_card_reauthorizes_and_voids_the_old_authorization() -> None:
    plan = plan_edit(CARD, 1, 12_000)
    assert (plan.action, plan.outcome, plan.previous_amount, plan.amount, plan.replaces) == (
        EditAction.REAUTHORIZE, "reauthorized", 10_000, 12_000, "auth_1"
    )


def test_a_lower_total_on_an_uncaptured_card_keeps_the_authorization_and_captures_less_later() -> None:
    plan = plan_edit(CARD, 1, 7_000)
    assert (plan.action, plan.outcome, plan.amount) == (EditAction.RECORD, "authorization_reduced", 7_000)
    assert capture_amount(plan.amount, CARD.authorized) == 7_000


def test_raising_a_reduced_card_total_within_the_authorization_needs_no_new_authorization() -> None:
    plan = plan_edit(replace(CARD, amount=7_000, edit_no=1), 2, 9_000)
    assert (plan.action, plan.outcome, plan.amount) == (EditAction.RECORD, "authorization_reduced", 9_000)


def test_a_lower_total_after_capture_refunds_the_difference() -> None:
    plan = plan_edit(CAPTURED, 1, 8_500)
    assert (plan.action, plan.outcome, plan.refunded, plan.balance_due) == (EditAction.REFUND, "refunded", 1_500, 0)


def test_a_higher_total_after_capture_asks_the_customer_for_the_balance() -> None:
    plan = plan_edit(replace(CAPTURED, refunded=1_000), 1, 9_500)
    assert (plan.action, plan.outcome, plan.balance_due, plan.refunded) == (EditAction.RECORD, "balance_requested", 500, 0)


def test_an_unpaid_prepaid_request_is_updated_with_a_fresh_request_for_the_new_total() -> None:
    plan = plan_edit(PREPAID, 1, 8_000)
    assert (plan.outcome, plan.request, plan.status, plan.refund_owed) == ("request_updated", 8_000, "awaiting_payment", 0)


def test_a_paid_prepaid_order_edited_up_requests_only_the_balance() -> None:
    plan = plan_edit(replace(PREPAID, status="paid", received=10_000), 1, 10_800)
    assert (plan.outcome, plan.balance_due, plan.request, plan.status) == ("balance_requested", 800, 800, "partly_paid")


def test_a_paid_prepaid_order_edited_down_keeps_the_over_payment_as_refund_owed_and_refunds_nothing() -> None:
    plan = plan_edit(replace(PREPAID, status="paid", received=10_000), 1, 9_000)
    assert (plan.action, plan.outcome, plan.refunded, plan.refund_owed, plan.request) == (
        EditAction.RECORD, "request_updated", 0, 1_000, None
    )


def test_cash_on_delivery_asks_the_carrier_for_the_new_total() -> None:
    plan = plan_edit(replace(CARD, method="cash_on_delivery", status="awaiting_delivery", authorization_id=None), 1, 9_000)
    assert (plan.action, plan.outcome, plan.amount) == (EditAction.RECORD, "request_updated", 9_000)


@pytest.mark.parametrize(
    ("facts", "total"),
    [(replace(CARD, method="points_only", status="not_applicable", amount=0), 0), (CARD, 10_000), (PREPAID, 10_000)],
)
def test_points_only_or_an_unchanged_total_has_nothing_to_change(facts: EditFacts, total: int) -> None:
    plan = plan_edit(facts, 1, total)
    assert (plan.action, plan.outcome) == (EditAction.RECORD, "nothing_to_change")


def test_a_deferred_payment_edited_down_lowers_the_amount_at_the_provider() -> None:
    assert (plan_edit(DEFERRED, 1, 9_000).action, plan_edit(DEFERRED, 1, 9_000).outcome) == (
        EditAction.CREDIT_UPDATE, "credit_amount_updated"
    )


@pytest.mark.parametrize(("facts", "total"), [(DEFERRED, 11_000), (replace(DEFERRED, status="credit_rejected", credit_status="rejected"), 9_000)])
def test_a_deferred_payment_edited_up_or_after_a_rejection_gets_a_fresh_credit_check(facts: EditFacts, total: int) -> None:
    plan = plan_edit(facts, 1, total)
    assert (plan.action, plan.outcome, plan.amount) == (EditAction.CREDIT_RECHECK, "credit_rechecked", total)


def test_an_edit_of_a_cancelled_order_or_an_edit_already_honoured_is_ignored() -> None:
    assert plan_edit(replace(CARD, cancelled=True), 1, 12_000).action is EditAction.IGNORE
    assert plan_edit(replace(CARD, edit_no=2), 2, 12_000).action is EditAction.IGNORE
    assert plan_edit(replace(CARD, edit_no=2), 2, 12_000, retry=True).action is EditAction.REAUTHORIZE


def test_an_edit_while_a_gateway_call_is_in_flight_or_of_an_unknown_payment_fails_with_a_reason() -> None:
    plan = plan_edit(replace(CARD, status="capturing"), 1, 12_000)
    assert plan.action is EditAction.FAIL and "capture" in plan.reason
    assert plan_edit(None, 1, 12_000).action is EditAction.FAIL


def test_a_gateway_refusal_turns_the_plan_into_a_failure_naming_what_was_refused() -> None:
    failed = after_gateway(plan_edit(CARD, 1, 12_000), False, "amount_declined")
    assert (failed.action, failed.reason) == (EditAction.FAIL, "re-authorization refused by the gateway: amount_declined")
    assert after_gateway(plan_edit(CAPTURED, 1, 9_000), True, None).action is EditAction.RECORD


def test_only_a_decision_about_a_check_still_pending_counts() -> None:
    approved = CreditAnswer(CreditStatus.APPROVED, "cc_1")
    assert applies("pending", approved)
    assert not applies("approved", approved)
    assert not applies("pending", CreditAnswer(CreditStatus.PENDING, "cc_1"))
    assert not applies("cancelled", CreditAnswer(CreditStatus.REJECTED, "cc_1"))


def test_the_shipment_report_captures_only_an_approved_deferred_payment_of_an_order_still_on_once_all_shipped() -> None:
    assert reports_shipment("deferred", "credit_approved", cancelled=False, all_shipped=True)
    assert not reports_shipment("deferred", "credit_pending", cancelled=False, all_shipped=True)
    assert not reports_shipment("deferred", "credit_approved", cancelled=True, all_shipped=True)
    assert not reports_shipment("deferred", "credit_approved", cancelled=False, all_shipped=False)
    assert not reports_shipment("card", "credit_approved", cancelled=False, all_shipped=True)


def deferred_facts(status: str) -> PaymentFacts:
    return PaymentFacts(method="deferred", status=status, amount=9_000, authorized=0, captured=0, refunded=0, received=0)


@pytest.mark.parametrize("status", ["credit_approved", "credit_pending"])
def test_cancelling_a_checked_deferred_payment_cancels_it_at_the_provider(status: str) -> None:
    plan = plan_cancellation(deferred_facts(status), cancel_payment=True)
    assert (plan.action, plan.outcome, plan.amount, plan.status) == (Action.CANCEL_CREDIT, "voided", 9_000, "cancelled")
    assert after_cancel_gateway(plan, False, "already_captured").reason == (
        "cancel at the provider refused by the gateway: already_captured"
    )


def test_cancelling_a_rejected_deferred_payment_has_nothing_to_cancel_and_one_being_checked_waits() -> None:
    assert plan_cancellation(deferred_facts("credit_rejected"), cancel_payment=True).outcome == "nothing_to_cancel"
    assert plan_cancellation(deferred_facts("credit_checking"), cancel_payment=True).action is Action.FAIL


def test_a_return_on_a_collected_cash_on_delivery_order_is_a_refund_owed_and_before_collection_the_carrier_collects_less() -> None:
    collected = replace(CARD, method="cash_on_delivery", status="paid", authorized=0, authorization_id=None, received=10_000)
    plan = plan_edit(collected, 2, 7_000)
    assert (plan.action, plan.outcome, plan.refund_owed, plan.refunded) == (EditAction.RECORD, "request_updated", 3_000, 0)
    uncollected = replace(collected, status="awaiting_delivery", received=0)
    assert plan_edit(uncollected, 2, 7_000).outcome == "request_updated" and plan_edit(uncollected, 2, 7_000).refund_owed == 0
