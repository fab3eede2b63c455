"""Card, prepaid and cash rules without I/O: flows, capture/refund/void limits, expiry, references, balances, statements."""

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from ordermesh_contracts import OrderAccepted
from ordermesh_payments.domain.card import (
    CardState,
    capture_refusals,
    needs_reauthorization,
    refund_amount,
    refund_refusals,
    void_refusals,
)
from ordermesh_payments.domain.payment import Flow, flow_for
from ordermesh_payments.domain.received import (
    balance_after,
    due_date,
    is_overdue,
    parse_bank_statement,
    payment_reference,
)

DATA = Path(__file__).parent / "data"
AUTHORIZED = CardState(status="authorized", authorized=9660, captured=0, refunded=0)
CAPTURED = CardState(status="captured", authorized=9660, captured=9660, refunded=0)


def order(method: str, total: int = 9660) -> OrderAccepted:
    raw: dict[str, Any] = json.loads((DATA / "order_accepted_card.json").read_text(encoding="utf-8"))
    raw["payment"] = {"method": method, "card_token": "tok_visa" if method == "card" else None}
    raw["charges"]["total"] = total
    return OrderAccepted.model_validate(raw)


@pytest.mark.parametrize(
    ("method", "flow"),
    [
        ("card", Flow.CARD),
        ("bank_transfer", Flow.PREPAID),
        ("convenience_store", Flow.PREPAID),
        ("cash_on_delivery", Flow.CASH_ON_DELIVERY),
        ("deferred", Flow.DEFERRED),
        ("points_only", Flow.NONE),
        ("platform", Flow.PLATFORM),
    ],
)
def test_each_payment_method_takes_its_own_flow(method: str, flow: Flow) -> None:
    assert flow_for(order(method)) is flow


@pytest.mark.parametrize("method", ["card", "bank_transfer", "cash_on_delivery", "platform"])
def test_an_order_paid_entirely_by_points_sends_nothing_anywhere(method: str) -> None:
    assert flow_for(order(method, total=0)) is Flow.NONE


def test_capturing_more_than_was_authorized_is_refused_with_the_amounts() -> None:
    assert capture_refusals(AUTHORIZED, 9661) == ["capture of 9661 is more than the 9660 authorized"]


def test_a_partial_capture_within_the_authorization_is_allowed_also_after_a_failed_capture() -> None:
    assert capture_refusals(AUTHORIZED, 5000) == []
    assert capture_refusals(CardState("capture_failed", 9660, 0, 0), 9660) == []


def test_a_captured_or_voided_payment_cannot_be_captured_again() -> None:
    assert capture_refusals(CAPTURED, 100) == ["payment is captured, not authorized"]
    assert capture_refusals(CardState("voided", 9660, 0, 0), 100) == ["payment is voided, not authorized"]


def test_refunding_more_than_was_captured_and_not_yet_refunded_is_refused() -> None:
    partly_refunded = CardState("captured", 9660, 9660, 9000)
    assert refund_refusals(partly_refunded, 661) == ["refund of 661 is more than the 660 captured and not yet refunded"]
    assert refund_refusals(partly_refunded, 660) == []


def test_a_refund_without_an_amount_refunds_what_is_left() -> None:
    assert refund_amount(CardState("captured", 9660, 9660, 1000), None) == 8660
    assert refund_amount(CAPTURED, 2000) == 2000


def test_an_uncaptured_payment_cannot_be_refunded_only_voided() -> None:
    assert refund_refusals(AUTHORIZED, 100) == ["nothing was captured; void the authorization instead"]
    assert void_refusals(AUTHORIZED) == []


def test_a_captured_payment_cannot_be_voided() -> None:
    assert void_refusals(CAPTURED) == ["payment is captured; only an uncaptured authorization can be voided (refund instead)"]
    assert void_refusals(CardState("voided", 9660, 0, 0)) == ["payment is already voided"]


@pytest.mark.parametrize(
    ("age", "expected"),
    [(timedelta(days=1), False), (timedelta(days=5, hours=23), False), (timedelta(days=6, hours=1), True), (timedelta(days=8), True)],
)
def test_an_authorization_is_flagged_a_day_before_it_expires_after_seven_days(age: timedelta, expected: bool) -> None:
    now = datetime(2025, 3, 20, 9, 0, tzinfo=timezone.utc)
    assert needs_reauthorization(now - age, now, valid_days=7) is expected


def test_the_payment_reference_is_short_stable_and_derived_from_the_order() -> None:
    order_id = UUID("b1cd6279-21ed-5ee8-bbf1-67df6bc3dd45")
    assert payment_reference(order_id) == "OM-B1CD627921ED" == payment_reference(UUID(str(order_id)))


def test_the_due_date_is_n_days_after_acceptance() -> None:
    assert due_date(datetime(2025, 3, 12, 1, 15, tzinfo=timezone.utc), 7) == date(2025, 3, 19)


@pytest.mark.parametrize(("received", "balance"), [(9660, 0), (9000, 660), (10000, -340)])
def test_the_balance_is_due_when_under_paid_and_negative_when_over_paid(received: int, balance: int) -> None:
    assert balance_after(9660, received) == balance


def test_a_payment_is_overdue_only_after_its_due_date_with_money_still_due() -> None:
    due = date(2025, 3, 19)
    assert is_overdue(due, date(2025, 3, 20), balance=660)
    assert not is_overdue(due, date(2025, 3, 19), balance=660)
    assert not is_overdue(due, date(2025, 3, 25), balance=0)


def test_a_bank_statement_is_parsed_and_bad_lines_are_named() -> None:
    text = (
        "transaction_id,date,reference,amount\n"
        "TX-1,2025-03-14,om-b1cd627921ed,\"9,660\"\n"
        "TX-2,14/03/2025,OM-X,100\n"
        ",2025-03-14,OM-Y,100\n"
    )
    rows, problems = parse_bank_statement(text)
    assert [(r.transaction_id, r.reference, r.amount, r.booked_on) for r in rows] == [
        ("TX-1", "OM-B1CD627921ED", 9660, date(2025, 3, 14))
    ]
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4"]


def test_a_bank_statement_without_the_expected_columns_is_refused_as_a_whole() -> None:
    rows, problems = parse_bank_statement("id,amount\n1,100\n")
    assert rows == [] and problems == ["header lacks column(s) transaction_id, date, reference"]


def test_a_renewed_authorization_replaces_the_old_one_only_while_that_one_still_stands() -> None:
    from ordermesh_payments.domain.card import renewal_outcome

    standing = dict(status="authorized", authorization_id="auth_old", renewed="auth_old", cancelled=False)
    assert renewal_outcome(approved=True, **standing) == "replace"
    assert renewal_outcome(approved=False, **standing) == "flag"
    assert renewal_outcome(approved=True, **{**standing, "status": "captured"}) == "void_renewal"
    assert renewal_outcome(approved=True, **{**standing, "cancelled": True}) == "void_renewal"
    assert renewal_outcome(approved=True, **{**standing, "authorization_id": "auth_for_edit"}) == "void_renewal"


def test_renewing_is_pointless_when_an_authorization_lives_no_longer_than_the_renewal_margin() -> None:
    from ordermesh_payments.domain.card import renewal_helps

    assert renewal_helps(7) and renewal_helps(2)
    assert not renewal_helps(1)
