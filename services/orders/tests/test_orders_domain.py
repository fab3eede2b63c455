"""The orders domain without I/O: intake sanity checks, the address flag, and automatic progress through the stages."""

import json
from pathlib import Path
from typing import Any

import pytest
from ordermesh_contracts import PaymentMethod, ShopOrderSubmitted, Stage
from ordermesh_orders.domain.intake import (
    address_errors,
    address_flag,
    expected_total,
    merchandise_total,
    rejection_reasons,
)
from ordermesh_orders.domain.progress import (
    OrderState,
    advance,
    initial_flags,
    next_stage,
    record_flags,
)

DATA = Path(__file__).parent / "data"


def raw_order(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"shop_order_{name}.json").read_text(encoding="utf-8"))


def order(raw: dict[str, Any]) -> ShopOrderSubmitted:
    return ShopOrderSubmitted.model_validate(raw)


# --- intake ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["card", "cash_on_delivery"])
def test_a_consistent_order_has_no_rejection_reasons(name: str) -> None:
    assert rejection_reasons(order(raw_order(name))) == []


def test_merchandise_total_is_lines_after_line_discounts_and_the_total_adds_fees_less_discount_and_points() -> None:
    card = order(raw_order("card"))
    assert merchandise_total(card) == 2160 * 2 - 200 + 5500
    assert expected_total(card) == 9620 + 660 - 500 - 120


def test_a_total_that_does_not_match_is_the_only_reason_given() -> None:
    raw = raw_order("card")
    raw["charges"]["total"] = 9700
    assert rejection_reasons(order(raw)) == ["total 9700 does not match lines, fees, discounts and points (9660)"]


def test_a_zero_quantity_is_the_only_reason_given_when_the_total_still_matches() -> None:
    raw = raw_order("card")
    raw["deliveries"][0]["lines"][1]["quantity"] = 0
    raw["charges"]["total"] = 9660 - 5500
    assert rejection_reasons(order(raw)) == ["delivery 0 line 1 (CHAWAN-KIYOMIZU): quantity must be positive"]


def test_a_negative_quantity_is_a_reason() -> None:
    raw = raw_order("card")
    raw["deliveries"][0]["lines"][1]["quantity"] = -1
    raw["charges"]["total"] = 9660 - 5500 * 2
    assert "delivery 0 line 1 (CHAWAN-KIYOMIZU): quantity must be positive" in rejection_reasons(order(raw))


def test_a_discount_larger_than_its_line_is_the_only_reason_given_when_the_total_still_matches() -> None:
    raw = raw_order("card")
    raw["deliveries"][0]["lines"][0]["line_discount"] = 4321
    raw["charges"]["total"] = 9660 + 200 - 4321
    assert rejection_reasons(order(raw)) == [
        "delivery 0 line 0 (MATCHA-UJI-40G): discount exceeds the line amount"
    ]


def test_a_discount_equal_to_its_line_is_allowed() -> None:
    raw = raw_order("card")
    raw["deliveries"][0]["lines"][0]["line_discount"] = 4320
    raw["charges"]["total"] = 9660 + 200 - 4320
    assert rejection_reasons(order(raw)) == []


def test_a_delivery_without_lines_is_the_only_reason_given() -> None:
    raw = raw_order("card")
    raw["deliveries"].append({**raw["deliveries"][0], "lines": []})
    assert rejection_reasons(order(raw)) == ["delivery 1 has no lines"]


def test_an_order_without_deliveries_is_the_only_reason_given_when_the_total_still_matches() -> None:
    raw = raw_order("card")
    raw["deliveries"] = []
    raw["charges"] = {"shipping_fee": 660, "points_used": 120, "total": 540}
    assert rejection_reasons(order(raw)) == ["the order has no delivery"]


def test_a_negative_total_is_a_reason_even_when_it_adds_up() -> None:
    raw = raw_order("card")
    raw["charges"]["order_discount"] = 12000
    raw["charges"]["total"] = 9660 + 500 - 12000
    assert rejection_reasons(order(raw)) == ["total is negative"]


def test_an_order_with_several_problems_lists_every_reason() -> None:
    assert rejection_reasons(order(raw_order("broken"))) == [
        "delivery 0 line 0 (SENCHA-100G): quantity must be positive",
        "delivery 0 line 1 (HOJICHA-200G): discount exceeds the line amount",
        "delivery 1 has no lines",
        "total 4320 does not match lines, fees, discounts and points (280)",
    ]


def test_an_unsupported_currency_is_a_reason() -> None:
    raw = raw_order("card")
    raw["currency"] = "XYZ"
    assert rejection_reasons(order(raw)) == ["currency XYZ is not supported"]


JAPAN_POST = {"6048005": ("京都府", "京都市中京区"), "1500041": ("東京都", "渋谷区")}


def lookup(code: str):
    return JAPAN_POST.get(code)


@pytest.mark.parametrize("postal_code", ["604-8005", "6048005", "６０４－８００５"])
def test_a_japanese_postal_code_with_or_without_hyphen_is_ok(postal_code: str) -> None:
    raw = raw_order("card")
    raw["billing_address"]["postal_code"] = postal_code
    assert address_flag(order(raw), lookup) == "ok"


@pytest.mark.parametrize("postal_code", ["60-48005", "604-800", "604-80055", "〒604-8005", "ABC-DEFG"])
def test_a_malformed_japanese_postal_code_in_a_delivery_address_is_an_error(postal_code: str) -> None:
    raw = raw_order("card")
    raw["deliveries"][0]["address"]["postal_code"] = postal_code
    assert address_flag(order(raw), lookup) == "error"


def test_a_malformed_japanese_postal_code_in_the_billing_address_is_an_error() -> None:
    raw = raw_order("card")
    raw["billing_address"]["postal_code"] = "604 8005"
    assert address_flag(order(raw), lookup) == "error"


def test_an_unknown_postal_code_is_an_error_with_the_reason() -> None:
    raw = raw_order("card")
    raw["deliveries"][0]["address"]["postal_code"] = "999-9999"
    assert address_errors(order(raw), lookup) == ["delivery 0: postal code 999-9999 does not exist"]


def test_a_postal_code_of_another_prefecture_or_city_is_an_error() -> None:
    raw = raw_order("card")
    raw["deliveries"][0]["address"]["prefecture"] = "大阪府"
    raw["billing_address"]["city"] = "港区"
    reasons = address_errors(order(raw), lookup)
    assert "delivery 0: postal code 1500041 is in 東京都, not 大阪府" in reasons
    assert any(r.startswith("billing: postal code") and "not 港区" in r for r in reasons)


def test_a_foreign_address_is_not_held_to_the_japanese_postal_code_format() -> None:
    raw = raw_order("card")
    raw["deliveries"][0]["address"].update(country="US", postal_code="94103", prefecture="CA", city="San Francisco")
    assert address_flag(order(raw), lookup) == "ok"


# --- progress -------------------------------------------------------------------------------------


def fresh_state(method: PaymentMethod, address: str = "ok") -> OrderState:
    return OrderState(stage=Stage.REVIEW, payment_method=method, flags=initial_flags(method, address))


def test_a_fresh_card_order_moves_from_review_to_awaiting_payment_and_waits_for_the_authorization() -> None:
    progress = advance(fresh_state(PaymentMethod.CARD))
    assert progress.state.stage is Stage.AWAITING_PAYMENT
    assert progress.transitions == [(Stage.REVIEW, Stage.AWAITING_PAYMENT)]


@pytest.mark.parametrize(
    "flags",
    [{"customer": "blacklisted"}, {"address": "error"}, {"delivery_date": "error"}],
)
def test_a_card_order_stays_in_review_unless_customer_address_and_date_are_all_fine(flags: dict[str, str]) -> None:
    state = fresh_state(PaymentMethod.CARD)
    progress = record_flags(state, flags)
    assert progress.state.stage is Stage.REVIEW
    assert progress.transitions == []


def test_an_order_with_an_open_blocking_task_stays_in_review() -> None:
    state = OrderState(Stage.REVIEW, PaymentMethod.CARD, initial_flags(PaymentMethod.CARD, "ok"), blocking_tasks=1)
    assert next_stage(state) is None


def test_a_confirmed_address_lets_a_held_order_leave_review() -> None:
    held = advance(fresh_state(PaymentMethod.CARD, address="error")).state
    assert held.stage is Stage.REVIEW
    assert record_flags(held, {"address": "confirmed"}).state.stage is Stage.AWAITING_PAYMENT


def test_the_card_authorization_moves_the_order_on_to_awaiting_allocation() -> None:
    waiting = advance(fresh_state(PaymentMethod.CARD)).state
    progress = record_flags(waiting, {"card_authorization": "authorized"})
    assert progress.state.stage is Stage.AWAITING_ALLOCATION
    assert progress.transitions == [(Stage.AWAITING_PAYMENT, Stage.AWAITING_ALLOCATION)]


def test_a_failed_card_authorization_keeps_the_order_awaiting_payment() -> None:
    waiting = advance(fresh_state(PaymentMethod.CARD)).state
    assert record_flags(waiting, {"card_authorization": "error"}).state.stage is Stage.AWAITING_PAYMENT


def test_a_cash_on_delivery_order_passes_payment_at_once() -> None:
    progress = advance(fresh_state(PaymentMethod.CASH_ON_DELIVERY))
    assert progress.state.stage is Stage.AWAITING_ALLOCATION
    assert progress.transitions == [
        (Stage.REVIEW, Stage.AWAITING_PAYMENT),
        (Stage.AWAITING_PAYMENT, Stage.AWAITING_ALLOCATION),
    ]


def test_a_bank_transfer_order_waits_until_the_money_is_received() -> None:
    waiting = advance(fresh_state(PaymentMethod.BANK_TRANSFER)).state
    assert waiting.stage is Stage.AWAITING_PAYMENT
    assert record_flags(waiting, {"prepaid_payment": "received"}).state.stage is Stage.AWAITING_ALLOCATION


def test_a_full_allocation_makes_the_order_ready_to_ship() -> None:
    waiting = advance(fresh_state(PaymentMethod.CASH_ON_DELIVERY)).state
    progress = record_flags(waiting, {"allocation": "full"})
    assert progress.state.stage is Stage.READY_TO_SHIP
    assert progress.transitions == [(Stage.AWAITING_ALLOCATION, Stage.READY_TO_SHIP)]


@pytest.mark.parametrize("allocation", ["partial", "none"])
def test_a_partial_or_missing_allocation_keeps_the_order_awaiting_allocation(allocation: str) -> None:
    waiting = advance(fresh_state(PaymentMethod.CASH_ON_DELIVERY)).state
    assert record_flags(waiting, {"allocation": allocation}).state.stage is Stage.AWAITING_ALLOCATION


def shipped_card_order() -> OrderState:
    state = advance(fresh_state(PaymentMethod.CARD)).state
    for changes in (
        {"card_authorization": "authorized"},
        {"allocation": "full"},
        {"shipping": "requested"},
        {"shipping": "shipped"},
    ):
        state = record_flags(state, changes).state
    return state


def test_a_shipped_card_order_waits_for_capture_points_and_mail() -> None:
    state = shipped_card_order()
    assert state.stage is Stage.SHIPPED
    state = record_flags(state, {"capture": "done"}).state
    assert state.stage is Stage.SHIPPED
    state = record_flags(state, {"points": "confirmed"}).state
    assert state.stage is Stage.SHIPPED
    progress = record_flags(state, {"mail_shipped": "sent"})
    assert progress.state.stage is Stage.COMPLETED
    assert progress.transitions == [(Stage.SHIPPED, Stage.COMPLETED)]


@pytest.mark.parametrize(
    "missing",
    [{"capture": "not_yet"}, {"capture": "error"}, {"points": "provisional"}, {"mail_shipped": "unsent"}, {"mail_shipped": "failed"}],
)
def test_a_shipped_order_is_not_completed_while_one_condition_is_missing(missing: dict[str, str]) -> None:
    done = {"capture": "done", "points": "confirmed", "mail_shipped": "sent"}
    assert record_flags(shipped_card_order(), {**done, **missing}).state.stage is Stage.SHIPPED


def test_not_applicable_points_and_mail_count_as_done() -> None:
    progress = record_flags(
        shipped_card_order(), {"capture": "done", "points": "not_applicable", "mail_shipped": "not_applicable"}
    )
    assert progress.state.stage is Stage.COMPLETED


def test_a_partly_shipped_order_is_shipping_and_not_shipped() -> None:
    state = advance(fresh_state(PaymentMethod.CASH_ON_DELIVERY)).state
    state = record_flags(state, {"allocation": "full"}).state
    assert record_flags(state, {"shipping": "partly_shipped"}).state.stage is Stage.SHIPPING


def test_an_order_in_manual_mode_never_moves() -> None:
    state = OrderState(
        Stage.REVIEW,
        PaymentMethod.CASH_ON_DELIVERY,
        {**initial_flags(PaymentMethod.CASH_ON_DELIVERY, "ok"), "allocation": "full"},
        mode="manual",
    )
    progress = record_flags(state, {"shipping": "shipped"})
    assert progress.state.stage is Stage.REVIEW
    assert progress.transitions == []


def test_flags_recorded_before_shipping_still_complete_the_order_once_it_has_shipped() -> None:
    state = advance(fresh_state(PaymentMethod.CARD)).state
    state = record_flags(state, {"card_authorization": "authorized"}).state
    state = record_flags(state, {"allocation": "full"}).state
    state = record_flags(state, {"shipping": "requested"}).state
    assert state.stage is Stage.SHIPPING
    for early in ({"capture": "done"}, {"points": "confirmed"}, {"mail_shipped": "sent"}):
        state = record_flags(state, early).state
        assert state.stage is Stage.SHIPPING
    progress = record_flags(state, {"shipping": "shipped"})
    assert progress.state.stage is Stage.COMPLETED
    assert progress.transitions == [(Stage.SHIPPING, Stage.SHIPPED), (Stage.SHIPPED, Stage.COMPLETED)]


def test_a_shipment_reported_before_it_was_requested_goes_all_the_way_through_in_one_step() -> None:
    state = advance(fresh_state(PaymentMethod.CASH_ON_DELIVERY)).state
    state = record_flags(state, {"allocation": "full"}).state
    shipped = record_flags(state, {"shipping": "shipped", "points": "not_applicable", "mail_shipped": "sent"})
    assert shipped.state.stage is Stage.SHIPPED, "cash on delivery completes only once the cash is collected"
    progress = record_flags(state, {"shipping": "shipped", "points": "not_applicable", "mail_shipped": "sent", "cod_collection": "collected"})
    assert progress.transitions == [
        (Stage.READY_TO_SHIP, Stage.SHIPPING),
        (Stage.SHIPPING, Stage.SHIPPED),
        (Stage.SHIPPED, Stage.COMPLETED),
    ]


def test_record_flags_leaves_the_original_state_untouched() -> None:
    state = advance(fresh_state(PaymentMethod.CARD)).state
    before = dict(state.flags)
    record_flags(state, {"card_authorization": "authorized"})
    assert state.flags == before
    assert state.stage is Stage.AWAITING_PAYMENT


def test_a_completed_order_does_not_move_any_further() -> None:
    state = OrderState(Stage.COMPLETED, PaymentMethod.CARD, initial_flags(PaymentMethod.CARD, "ok"))
    assert next_stage(state) is None


def test_initial_flags_mark_card_steps_as_pending_and_other_methods_as_not_applicable() -> None:
    card = initial_flags(PaymentMethod.CARD, "ok")
    cod = initial_flags(PaymentMethod.CASH_ON_DELIVERY, "error")
    assert (card["card_authorization"], card["capture"]) == ("none", "not_yet")
    assert (cod["card_authorization"], cod["capture"], cod["address"]) == ("not_applicable", "not_applicable", "error")


def test_a_prepaid_order_waits_for_its_payment_and_an_under_payment_keeps_it_waiting() -> None:
    state = advance(fresh_state(PaymentMethod.BANK_TRANSFER)).state
    assert state.stage is Stage.AWAITING_PAYMENT
    assert record_flags(state, {"prepaid_payment": "under_paid"}).state.stage is Stage.AWAITING_PAYMENT
    assert record_flags(state, {"prepaid_payment": "received"}).state.stage is Stage.AWAITING_ALLOCATION


def test_a_staff_confirmed_flag_is_not_overturned_by_a_later_check() -> None:
    state = advance(fresh_state(PaymentMethod.CARD)).state
    confirmed = record_flags(state, {"delivery_date": "confirmed"}).state
    assert record_flags(confirmed, {"delivery_date": "error"}).state.flags["delivery_date"] == "confirmed"


# --- paid on the platform, and nothing to pay ------------------------------------------------------


def shipped_order(method: PaymentMethod) -> OrderState:
    state = advance(fresh_state(method)).state
    for changes in ({"allocation": "full"}, {"shipping": "requested"}, {"shipping": "shipped"}):
        state = record_flags(state, changes).state
    return state


def test_an_order_paid_on_the_platform_needs_no_authorization_credit_check_or_prepaid_payment() -> None:
    flags = initial_flags(PaymentMethod.PLATFORM, "ok")
    assert (flags["card_authorization"], flags["credit_check"], flags["prepaid_payment"], flags["cod_collection"]) == (
        "not_applicable", "not_applicable", "not_applicable", "not_applicable",
    )
    assert flags["capture"] == "not_yet"
    progress = advance(fresh_state(PaymentMethod.PLATFORM))
    assert progress.state.stage is Stage.AWAITING_ALLOCATION
    assert progress.transitions == [(Stage.REVIEW, Stage.AWAITING_PAYMENT), (Stage.AWAITING_PAYMENT, Stage.AWAITING_ALLOCATION)]


@pytest.mark.parametrize("method", [PaymentMethod.PLATFORM, PaymentMethod.POINTS_ONLY])
def test_a_shipped_platform_or_points_only_order_completes_only_once_payments_reports_it_settled(method) -> None:
    state = shipped_order(method)
    assert state.stage is Stage.SHIPPED
    waiting = record_flags(state, {"points": "confirmed", "mail_shipped": "sent"}).state
    assert waiting.stage is Stage.SHIPPED, "the capture (platform) or settlement with nothing to pay is still missing"
    assert record_flags(waiting, {"capture": "error"}).state.stage is Stage.SHIPPED
    progress = record_flags(waiting, {"capture": "done"})
    assert progress.state.stage is Stage.COMPLETED
    assert progress.transitions == [(Stage.SHIPPED, Stage.COMPLETED)]


def test_a_points_only_order_passes_awaiting_payment_at_once_but_waits_for_its_settlement_to_complete() -> None:
    flags = initial_flags(PaymentMethod.POINTS_ONLY, "ok", points_used=3000)
    assert (flags["card_authorization"], flags["capture"], flags["points_redemption"]) == ("not_applicable", "not_yet", "pending")
    state = advance(OrderState(stage=Stage.REVIEW, payment_method=PaymentMethod.POINTS_ONLY, flags=flags)).state
    assert state.stage is Stage.REVIEW, "the points used are not reserved yet"
    assert record_flags(state, {"points_redemption": "reserved"}).state.stage is Stage.AWAITING_ALLOCATION


@pytest.mark.parametrize("method", [PaymentMethod.CARD, PaymentMethod.DEFERRED, PaymentMethod.BANK_TRANSFER, PaymentMethod.CASH_ON_DELIVERY])
def test_an_order_with_nothing_to_pay_secures_nothing_whatever_its_method_and_waits_for_its_settlement(method) -> None:
    flags = initial_flags(method, "ok", nothing_to_pay=True)
    state = OrderState(stage=Stage.REVIEW, payment_method=method, flags=flags)
    assert advance(state).state.stage is Stage.AWAITING_ALLOCATION
    shipped = OrderState(stage=Stage.SHIPPED, payment_method=method, flags={**flags, "points": "confirmed", "mail_shipped": "sent"})
    assert next_stage(shipped) is None
    assert next_stage(OrderState(stage=Stage.SHIPPED, payment_method=method, flags={**shipped.flags, "capture": "done"})) is Stage.COMPLETED
