"""When a message calls a gateway: the decisions of a card's authorization and capture and of a deferred payment's
credit check, as plain function calls."""

from dataclasses import replace

from ordermesh_payments.domain.credit import CreditCheckFacts, CreditCheckStep, plan_credit_check
from ordermesh_payments.domain.gateway_calls import (
    Authorization,
    AuthorizationFacts,
    Capture,
    CaptureFacts,
    CapturePlan,
    plan_authorization,
    plan_capture,
)

KEY = "key-of-this-message"
NEW = AuthorizationFacts(
    processed=False, cancelled=False, payment_exists=False, payment_gateway=None, shop_gateway="sandbox",
    capture_at_authorization=False, authorize_keys=(),
)
CONFIGURED = {"sandbox", "stripe"}


def authorizing(**changes) -> Authorization:
    return plan_authorization(replace(NEW, **changes), KEY, CONFIGURED).step


def test_a_new_card_order_is_authorized_on_its_shops_gateway_and_captured_at_once_if_the_shop_says_so() -> None:
    plan = plan_authorization(NEW, KEY, CONFIGURED)
    assert (plan.step, plan.gateway, plan.capture_now) == (Authorization.AUTHORIZE, "sandbox", False)
    now = plan_authorization(replace(NEW, capture_at_authorization=True), KEY, CONFIGURED)
    assert now.capture_now


def test_an_intent_left_under_this_messages_key_is_called_again_on_the_gateway_the_payment_started_on() -> None:
    facts = replace(NEW, payment_exists=True, payment_gateway="stripe", authorize_keys=(KEY,))
    plan = plan_authorization(facts, KEY, CONFIGURED)
    assert (plan.step, plan.gateway) == (Authorization.AUTHORIZE, "stripe")


def test_a_processed_message_is_a_duplicate_before_anything_else() -> None:
    assert authorizing(processed=True, cancelled=True, shop_gateway="unknown") is Authorization.DUPLICATE


def test_a_cancelled_order_is_recorded_as_cancelled_even_on_a_gateway_not_configured() -> None:
    assert authorizing(cancelled=True, shop_gateway="unknown") is Authorization.CANCELLED


def test_a_shop_on_a_gateway_not_configured_is_refused() -> None:
    assert authorizing(shop_gateway="adyen") is Authorization.GATEWAY_MISSING


def test_an_order_authorized_under_another_key_is_not_authorized_again() -> None:
    assert authorizing(payment_exists=True, payment_gateway="sandbox", authorize_keys=("earlier",)) is Authorization.REPEATED
    assert authorizing(payment_exists=True, payment_gateway="sandbox", authorize_keys=("earlier", KEY)) is Authorization.REPEATED


def shipped_with(**payment) -> CapturePlan:
    facts = {"processed": False, "method": "card", "status": "authorized", "cancelled": False, "amount": 9660, "authorized": 9660}
    return plan_capture(CaptureFacts(**{**facts, **payment}))


def test_an_authorized_card_is_captured_for_what_the_edits_left_of_it_never_more_than_authorized() -> None:
    plan = plan_capture(CaptureFacts(processed=False, method="card", status="authorized", cancelled=False, amount=12000, authorized=9660))
    assert (plan.step, plan.amount, plan.reports_shipment) == (Capture.CAPTURE, 9660, False)


def test_an_approved_deferred_payment_is_captured_by_the_shipment_report_for_its_whole_amount() -> None:
    plan = plan_capture(CaptureFacts(processed=False, method="deferred", status="credit_approved", cancelled=False, amount=5000, authorized=0))
    assert (plan.step, plan.amount, plan.reports_shipment) == (Capture.CAPTURE, 5000, True)


def test_a_capture_left_in_flight_is_called_again() -> None:
    assert shipped_with(status="capturing").step is Capture.RETRY


def test_a_cancelled_captured_or_missing_payment_calls_no_gateway_and_a_processed_message_is_a_duplicate() -> None:
    assert shipped_with(cancelled=True).step is Capture.NO_CALL
    assert shipped_with(status="captured").step is Capture.NO_CALL
    assert shipped_with(status=None, method=None, amount=0, authorized=0).step is Capture.NO_CALL
    assert shipped_with(processed=True).step is Capture.DUPLICATE


def test_a_deferred_payment_asks_for_its_credit_check_once_under_the_key_of_the_message_that_asked_first() -> None:
    fresh = CreditCheckFacts(processed=False, cancelled=False, payment_exists=False, check_keys=())
    assert plan_credit_check(fresh, KEY) is CreditCheckStep.REQUEST
    assert plan_credit_check(replace(fresh, payment_exists=True, check_keys=(KEY,)), KEY) is CreditCheckStep.REQUEST
    assert plan_credit_check(replace(fresh, payment_exists=True, check_keys=("earlier",)), KEY) is CreditCheckStep.REPEATED
    assert plan_credit_check(replace(fresh, cancelled=True), KEY) is CreditCheckStep.CANCELLED
    assert plan_credit_check(replace(fresh, processed=True, cancelled=True), KEY) is CreditCheckStep.DUPLICATE
