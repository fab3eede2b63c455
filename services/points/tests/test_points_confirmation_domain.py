"""Which payment event confirms an order's points: told apart by the order's payment method, chosen by each shop one
by one, with the old one-knob choice unchanged."""

from uuid import uuid4

import pytest
from ordermesh_contracts import PaymentMethod
from ordermesh_points.domain import ledger
from ordermesh_points.domain.accrual import ShopPointsSettings
from ordermesh_points.domain.confirmation import PAYMENT_EVENTS, Payment, chosen_events

CAPTURE = Payment("captured")
PREPAID = Payment("received", "bank_transfer")
CASH = Payment("received", "cash_on_delivery")
ZERO = Payment("captured", nothing_due=True)


def events(*chosen) -> ShopPointsSettings:
    return ShopPointsSettings(confirm_on_events=chosen_events(list(chosen)))


@pytest.mark.parametrize(
    ("payment", "order_method", "event"),
    [
        (CAPTURE, "card", "card_captured"),
        (CAPTURE, "deferred", "deferred_captured"),
        (CAPTURE, "platform", "platform_paid"),
        (CAPTURE, "points_only", "nothing_due"),
        (PREPAID, "bank_transfer", "prepaid_received"),
        (Payment("received", "convenience_store"), "convenience_store", "prepaid_received"),
        (CASH, "cash_on_delivery", "cash_collected"),
        (CASH, None, "cash_collected"),
        (CAPTURE, None, None),
        (ZERO, "card", "nothing_due"),
        (ZERO, None, "nothing_due"),
    ],
)
def test_a_payment_is_told_apart_by_the_orders_method_and_money_received_by_its_own(payment, order_method, event) -> None:
    assert payment.event(order_method) == event


def test_every_payment_method_of_the_contract_settles_by_a_known_event() -> None:
    for method in PaymentMethod:
        assert CAPTURE.event(method.value) is not None, method


def test_a_shop_confirming_only_on_cash_collected_leaves_card_deferred_prepaid_and_platform_payments_provisional() -> None:
    cash_only = events("cash_collected")
    assert cash_only.confirms(CASH, "cash_on_delivery") is True
    assert cash_only.confirms(CAPTURE, "card") is False
    assert cash_only.confirms(CAPTURE, "deferred") is False
    assert cash_only.confirms(CAPTURE, "platform") is False
    assert cash_only.confirms(PREPAID, "bank_transfer") is False


def test_card_capture_and_deferred_capture_are_chosen_apart_though_both_arrive_as_a_capture() -> None:
    deferred_only = events("deferred_captured")
    assert deferred_only.confirms(CAPTURE, "deferred") is True
    assert deferred_only.confirms(CAPTURE, "card") is False
    assert events("card_captured", "platform_paid").confirms(CAPTURE, "platform") is True


def test_a_capture_before_the_acceptance_waits_for_the_method_when_the_shop_chose_events() -> None:
    assert events("card_captured").confirms(CAPTURE, None) is None
    assert events("card_captured").confirms_any([CAPTURE], "card") is True
    assert events("card_captured").confirms_any([CAPTURE], "deferred") is False
    assert events("card_captured").confirms_any([], "card") is False


def test_an_order_paid_with_points_confirms_on_its_zero_capture_under_any_choice_but_by_hand_only() -> None:
    for settings in (events("cash_collected"), events("prepaid_received"), ShopPointsSettings(confirm_on="received")):
        assert settings.confirms(CAPTURE, "points_only") is True
    assert events("cash_collected").confirms(ZERO, "card") is True  # a card order whose total was 0
    assert events("cash_collected").confirms(ZERO, None) is True  # no need to wait for the acceptance
    assert events().confirms(CAPTURE, "points_only") is False
    assert events().confirms(ZERO, None) is False
    assert ShopPointsSettings(confirm_on="manual").confirms(CAPTURE, "points_only") is False


@pytest.mark.parametrize(
    ("confirm_on", "capture", "receipt"),
    [("either", True, True), ("captured", True, False), ("received", False, True), ("manual", False, False)],
)
def test_without_a_list_the_one_knob_choice_confirms_as_before_whatever_the_method(confirm_on, capture, receipt) -> None:
    settings = ShopPointsSettings(confirm_on=confirm_on)
    for method in ("card", "deferred", "bank_transfer", "cash_on_delivery", "platform"):
        assert settings.confirms(CAPTURE, method) is capture
        assert settings.confirms(CASH, method) is receipt


def test_without_a_list_a_matching_payment_confirms_before_the_acceptance_and_another_waits_for_the_method() -> None:
    assert ShopPointsSettings(confirm_on="captured").confirms(CAPTURE, None) is True
    assert ShopPointsSettings(confirm_on="received").confirms(CAPTURE, None) is None
    assert ShopPointsSettings(confirm_on="manual").confirms(CAPTURE, None) is False


def test_a_list_decides_instead_of_the_one_knob_choice_and_an_empty_list_means_by_hand_only() -> None:
    listed = ShopPointsSettings(confirm_on="either", confirm_on_events=("cash_collected",))
    assert listed.confirms(CAPTURE, "card") is False
    assert ShopPointsSettings(confirm_on="either", confirm_on_events=()).manual_only
    assert not ShopPointsSettings(confirm_on="manual", confirm_on_events=("card_captured",)).manual_only


def test_a_chosen_list_keeps_each_event_once_in_one_order_and_none_stays_none() -> None:
    assert chosen_events(["platform_paid", "card_captured", "platform_paid"]) == ("card_captured", "platform_paid")
    assert chosen_events([]) == ()
    assert chosen_events(None) is None
    assert chosen_events(list(reversed(PAYMENT_EVENTS))) == PAYMENT_EVENTS


def test_a_kept_payment_reads_back_as_it_was_and_a_strange_one_is_refused() -> None:
    for payment in (CAPTURE, CASH, PREPAID, ZERO):
        assert Payment.of_token(payment.token()) == payment
    with pytest.raises(ValueError):
        Payment.of_token("refunded")


def test_a_confirmation_learned_at_the_acceptance_is_asked_for_only_of_an_order_awaiting_its_accrual() -> None:
    waiting = ledger.OrderPoints(uuid4())
    assert ledger.confirm_on_accrual(waiting).confirm_requested
    provisional = ledger.OrderPoints(uuid4(), status="provisional", points=5)
    assert ledger.confirm_on_accrual(provisional) == provisional
    assert ledger.accrue(ledger.confirm_on_accrual(waiting), 7).order.status == "confirmed"
