"""The ledger's decisions without I/O: accrual, confirmation, redemption, reversal, adjustments, debt and expiry."""

from datetime import date
from uuid import uuid4

import pytest
from ordermesh_points.domain.ledger import (
    Accrued,
    Balance,
    Confirmed,
    Entry,
    Kind,
    OrderPoints,
    Redeemed,
    RedemptionFailed,
    Reversed,
    accrue,
    add_months,
    balance_of,
    cancel,
    change_reservation,
    commit,
    confirm,
    confirm_by_staff,
    deduct,
    expire,
    grant,
    ledger_sum,
    reserve,
    settle_debt,
)


def new_order() -> OrderPoints:
    return OrderPoints(order_id=uuid4())


def kinds(entries) -> list[tuple[str, int]]:
    return [(e.kind.value, e.points) for e in entries]


def test_accrued_points_are_provisional_and_not_yet_available() -> None:
    decision = accrue(new_order(), 96)
    assert decision.order.status == "provisional"
    assert balance_of(decision.entries) == Balance(provisional=96)
    assert decision.notices == (Accrued(96),)


def test_an_order_that_earns_nothing_is_confirmed_with_zero_at_once_and_books_no_entries() -> None:
    decision = accrue(new_order(), 0)
    assert decision.order.status == "confirmed"
    assert decision.entries == ()
    assert decision.notices == (Accrued(0), Confirmed(0))


def test_confirmation_moves_provisional_points_to_available_and_lifetime() -> None:
    accrued = accrue(new_order(), 96)
    confirmed = confirm(accrued.order)
    assert balance_of(accrued.entries + confirmed.entries) == Balance(available=96, lifetime=96)
    assert confirmed.notices == (Confirmed(96),)


def test_points_are_confirmed_only_once() -> None:
    confirmed = confirm(accrue(new_order(), 96).order)
    again = confirm(confirmed.order)
    assert again.entries == () and again.notices == () and again.skipped == "already confirmed"


def test_a_confirmation_before_the_accrual_is_remembered_and_confirms_when_the_accrual_arrives() -> None:
    early = confirm(new_order())
    assert early.entries == () and early.order.confirm_requested
    accrued = accrue(early.order, 50)
    assert kinds(accrued.entries) == [("accrued", 50), ("confirmed", 50)]
    assert accrued.order.status == "confirmed"
    assert accrue(accrued.order, 50).entries == ()


def test_a_duplicate_accrual_books_nothing() -> None:
    first = accrue(new_order(), 96)
    assert accrue(first.order, 96).entries == ()


def test_cancel_before_confirmation_reverses_the_provisional_points_and_a_late_payment_confirms_nothing() -> None:
    accrued = accrue(new_order(), 96)
    cancelled = cancel(accrued.order, balance_of(accrued.entries), allow_negative=False)
    assert kinds(cancelled.entries) == [("reversed", 96)]
    assert cancelled.notices == (Reversed(reversed=96, deducted=0, debt=0, released=0),)
    late = confirm(cancelled.order)
    assert late.entries == () and late.skipped == "order cancelled"
    assert balance_of(accrued.entries + cancelled.entries) == Balance()


def test_cancel_after_confirmation_deducts_the_points_and_never_unconfirms_them() -> None:
    accrued = accrue(new_order(), 96)
    confirmed = confirm(accrued.order)
    ledger = accrued.entries + confirmed.entries + (Entry(Kind.GRANTED, 10),)
    cancelled = cancel(confirmed.order, balance_of(ledger), allow_negative=False)
    assert kinds(cancelled.entries) == [("deducted", 96)]
    assert balance_of(ledger + cancelled.entries) == Balance(available=10, lifetime=106)


def test_a_deduction_the_balance_cannot_carry_is_recorded_as_debt_not_as_a_negative_balance() -> None:
    accrued = accrue(new_order(), 96)
    confirmed = confirm(accrued.order)
    spent = (Entry(Kind.RESERVED, 60),)
    ledger = accrued.entries + confirmed.entries + spent
    cancelled = cancel(confirmed.order, balance_of(ledger), allow_negative=False)
    assert kinds(cancelled.entries) == [("deducted", 36), ("debt", 60)]
    assert cancelled.notices == (Reversed(reversed=0, deducted=36, debt=60, released=0),)
    assert balance_of(ledger + cancelled.entries).available == 0
    assert balance_of(ledger + cancelled.entries).debt == 60


def test_a_shop_that_allows_negative_balances_deducts_everything() -> None:
    cancelled = cancel(OrderPoints(uuid4(), status="confirmed", points=96), Balance(available=10), allow_negative=True)
    assert kinds(cancelled.entries) == [("deducted", 96)]
    assert Balance(available=10).after_all(cancelled.entries).available == -86


def test_debt_is_settled_from_points_that_become_available_later() -> None:
    balance = Balance(available=0, debt=60).after(Entry(Kind.GRANTED, 40))
    settled = settle_debt(balance)
    assert kinds(settled) == [("debt_settled", 40)]
    assert balance.after_all(settled) == Balance(available=0, debt=20, lifetime=40)


def test_points_used_at_intake_are_reserved_when_available() -> None:
    decision = reserve(new_order(), 300, Balance(available=500))
    assert kinds(decision.entries) == [("reserved", 300)]
    assert decision.notices == (Redeemed(300),)
    assert Balance(available=500).after_all(decision.entries) == Balance(available=200, reserved=300)


def test_using_more_points_than_available_fails_and_holds_nothing() -> None:
    decision = reserve(new_order(), 501, Balance(available=500, provisional=1000))
    assert decision.entries == ()
    assert decision.notices == (RedemptionFailed(requested=501, available=500),)
    assert decision.order.reservation == "failed"


def test_a_duplicate_reservation_holds_nothing_more() -> None:
    held = reserve(new_order(), 300, Balance(available=500))
    assert reserve(held.order, 300, Balance(available=200)).entries == ()


def test_points_held_are_released_on_cancel_and_committed_on_completion() -> None:
    held = reserve(new_order(), 300, Balance(available=500))
    cancelled = cancel(held.order, Balance(available=200, reserved=300), allow_negative=False)
    assert kinds(cancelled.entries) == [("released", 300)]
    completed = commit(held.order)
    assert kinds(completed.entries) == [("committed", 300)]
    assert commit(completed.order).entries == ()
    assert cancel(completed.order, Balance(used=300), allow_negative=False).entries == ()


def test_an_edit_that_lowers_points_used_releases_the_difference_and_one_that_raises_them_needs_the_balance() -> None:
    held = reserve(new_order(), 300, Balance(available=500)).order
    lowered = change_reservation(held, 100, Balance(available=200, reserved=300))
    assert kinds(lowered.entries) == [("released", 200)] and lowered.order.reserved == 100
    raised = change_reservation(held, 600, Balance(available=200, reserved=300))
    assert raised.entries == () and raised.notices == (RedemptionFailed(requested=600, available=500),)
    assert raised.order.reserved == 300


def test_staff_confirm_skips_unpaid_cancelled_unknown_and_already_confirmed_orders_with_the_reason() -> None:
    provisional = accrue(new_order(), 96).order
    assert confirm_by_staff(provisional).skipped == "not paid"
    assert kinds(confirm_by_staff(OrderPoints(provisional.order_id, "provisional", 96, paid=True)).entries) == [
        ("confirmed", 96)
    ]
    assert confirm_by_staff(OrderPoints(uuid4(), "reversed", paid=True)).skipped == "order cancelled"
    assert confirm_by_staff(OrderPoints(uuid4(), "confirmed", 5, paid=True)).skipped == "already confirmed"
    assert confirm_by_staff(None) is None


@pytest.mark.parametrize(
    ("points", "reason", "known", "expected"),
    [
        (0, "registered after buying", True, ["points must be a positive number, not 0"]),
        (-5, "registered after buying", True, ["points must be a positive number, not -5"]),
        (10, "   ", True, ["a reason is required"]),
        (10, "welcome", False, ["unknown customer: no orders or points of this customer in this shop"]),
        (
            -1,
            None,
            False,
            [
                "points must be a positive number, not -1",
                "unknown customer: no orders or points of this customer in this shop",
                "a reason is required",
            ],
        ),
    ],
)
def test_a_grant_with_a_bad_amount_an_unknown_customer_or_no_reason_is_refused_with_every_reason(
    points, reason, known, expected
) -> None:
    entries, problems = grant(Balance(), points, reason, customer_known=known)
    assert entries == () and problems == expected


def test_a_staff_deduction_takes_no_more_than_available_unless_negative_balances_are_allowed() -> None:
    entries, problems = deduct(Balance(available=50), 80, "mistaken confirmation", customer_known=True, allow_negative=False)
    assert entries == () and problems == ["only 50 points available; the shop does not allow a negative balance"]
    entries, problems = deduct(Balance(available=50), 80, "mistaken confirmation", customer_known=True, allow_negative=True)
    assert kinds(entries) == [("deducted", 80)] and problems == []


def test_confirmed_points_expire_first_in_first_out_after_n_months_and_only_once() -> None:
    ledger = [
        Entry(Kind.CONFIRMED, 100, on=date(2024, 1, 10)),
        Entry(Kind.GRANTED, 50, on=date(2024, 6, 1)),
        Entry(Kind.RESERVED, 30, on=date(2024, 7, 1)),
    ]
    ledger.insert(0, Entry(Kind.ACCRUED, 100, on=date(2024, 1, 5)))
    assert expire(ledger, as_of=date(2025, 1, 9), months=12) == ()
    [expired] = expire(ledger, as_of=date(2025, 1, 10), months=12)
    assert expired.points == 70  # the January lot, less the 30 used (spent oldest first)
    ledger.append(expired)
    assert expire(ledger, as_of=date(2025, 1, 10), months=12) == ()
    [later] = expire(ledger, as_of=date(2025, 6, 1), months=12)
    assert later.points == 50
    assert balance_of([*ledger, later]).available == 0


def test_a_shop_without_expiry_never_expires_points() -> None:
    assert expire([Entry(Kind.GRANTED, 50, on=date(2000, 1, 1))], as_of=date(2025, 1, 1), months=None) == ()


def test_adding_months_keeps_the_day_or_takes_the_last_day_of_a_shorter_month() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 11, 15), 14) == date(2026, 1, 15)


def test_a_ledger_entry_of_zero_or_negative_points_cannot_exist() -> None:
    with pytest.raises(ValueError):
        Entry(Kind.GRANTED, 0)


def test_the_ledger_sum_equals_available_provisional_reserved_and_used() -> None:
    ledger = [Entry(Kind.ACCRUED, 96), Entry(Kind.CONFIRMED, 90), Entry(Kind.REVERSED, 6), Entry(Kind.RESERVED, 40)]
    balance = balance_of(ledger)
    assert ledger_sum(ledger) == 90 == balance.available + balance.provisional + balance.reserved + balance.used
