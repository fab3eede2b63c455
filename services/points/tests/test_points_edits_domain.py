"""Order edits without I/O: provisional points follow the merchandise, the points held follow the points used,
confirmed points never change, and an edit that comes before the accrual waits for it."""

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from uuid import uuid4

from ordermesh_points.domain.accrual import (
    Campaign,
    EarningLine,
    EarningTerms,
    ShopPointsSettings,
)
from ordermesh_points.domain.edits import accrue_before_edit, honour_edit
from ordermesh_points.domain.ledger import (
    Balance,
    OrderPoints,
    Recomputed,
    RedemptionFailed,
    accrue,
    confirm_waiting,
    reserve,
)

EDITED_AT = datetime(2025, 3, 14, 1, 0, tzinfo=timezone.utc)


def kinds(entries) -> list[tuple[str, int]]:
    return [(e.kind.value, e.points) for e in entries]


def provisional(points: int = 96, *, held: int = 0) -> OrderPoints:
    order = accrue(OrderPoints(uuid4()), points).order
    return reserve(order, held, Balance(available=held)).order if held else order


def test_an_edit_moves_provisional_points_by_the_difference_up_or_down() -> None:
    order = provisional(96)
    down = honour_edit(order, edit_no=1, points=40, points_used=0, balance=Balance(provisional=96))
    assert kinds(down.entries) == [("reversed", 56)] and down.order.points == 40 and down.order.edit_no == 1
    assert down.notices == (Recomputed(1, 96, 40, 0, 0, confirmed_unchanged=False),)
    up = honour_edit(down.order, edit_no=2, points=117, points_used=0, balance=Balance(provisional=40))
    assert kinds(up.entries) == [("accrued", 77)] and up.notices[0].provisional == 117


def test_an_edit_never_changes_confirmed_points_only_the_points_used() -> None:
    confirmed = replace(provisional(96, held=100), status="confirmed")
    edited = honour_edit(confirmed, edit_no=1, points=10, points_used=40, balance=Balance(available=96, reserved=100))
    assert kinds(edited.entries) == [("released", 60)]
    assert (edited.order.status, edited.order.points, edited.order.reserved) == ("confirmed", 96, 40)
    assert edited.notices == (Recomputed(1, 0, 0, 100, 40, confirmed_unchanged=True),)


def test_more_points_used_than_the_balance_carries_keeps_the_old_hold_and_says_so() -> None:
    order = provisional(96, held=100)
    edited = honour_edit(order, edit_no=1, points=96, points_used=300, balance=Balance(available=150, reserved=100))
    assert edited.entries == () and edited.order.reserved == 100 and edited.order.edit_no == 1
    assert edited.notices == (Recomputed(1, 96, 96, 100, 100, False), RedemptionFailed(requested=300, available=250))
    within = honour_edit(order, edit_no=1, points=96, points_used=250, balance=Balance(available=150, reserved=100))
    assert kinds(within.entries) == [("reserved", 150)] and within.notices[0].points_used == 250


def test_a_cancelled_order_and_an_edit_already_honoured_change_nothing() -> None:
    cancelled = OrderPoints(uuid4(), status="reversed")
    assert honour_edit(cancelled, edit_no=1, points=50, points_used=0, balance=Balance()).entries == ()
    order = honour_edit(provisional(96), edit_no=2, points=50, points_used=0, balance=Balance()).order
    for stale in (1, 2):
        again = honour_edit(order, edit_no=stale, points=10, points_used=0, balance=Balance())
        assert again.entries == () and again.notices == () and again.skipped == f"edit {stale} already honoured"


def test_an_edit_before_the_accrual_waits_for_it_and_only_the_latest_waits() -> None:
    waiting = honour_edit(OrderPoints(uuid4()), edit_no=1, points=0, points_used=0, balance=Balance())
    assert waiting.entries == () and waiting.notices == () and waiting.order.pending_edit_no == 1
    later = honour_edit(waiting.order, edit_no=2, points=0, points_used=0, balance=Balance())
    assert later.order.pending_edit_no == 2
    assert honour_edit(later.order, edit_no=1, points=0, points_used=0, balance=Balance()).order.pending_edit_no == 2
    accrued = accrue(later.order, 96).order
    honoured = honour_edit(accrued, edit_no=2, points=50, points_used=0, balance=Balance())
    assert kinds(honoured.entries) == [("reversed", 46)] and honoured.order.pending_edit_no == 0


def test_a_payment_made_after_the_edit_confirms_the_edited_points_once_both_wait_for_a_late_accrual() -> None:
    paid_later = OrderPoints(uuid4(), confirm_requested=True, paid=True, paid_at=EDITED_AT + timedelta(hours=1))
    accrued = accrue_before_edit(paid_later, 96, EDITED_AT)
    assert kinds(accrued.entries) == [("accrued", 96)] and accrued.order.status == "provisional"
    edited = honour_edit(accrued.order, edit_no=1, points=117, points_used=0, balance=Balance(provisional=96))
    confirmed = confirm_waiting(edited.order)
    assert kinds(confirmed.entries) == [("confirmed", 117)] and confirmed.order.status == "confirmed"

    paid_before = replace(paid_later, paid_at=EDITED_AT - timedelta(hours=1))
    at_once = accrue_before_edit(paid_before, 96, EDITED_AT)
    assert kinds(at_once.entries) == [("accrued", 96), ("confirmed", 96)]
    assert honour_edit(at_once.order, edit_no=1, points=117, points_used=0, balance=Balance()).entries == ()
    assert confirm_waiting(at_once.order).entries == ()


def test_an_order_without_a_waiting_confirmation_is_not_confirmed_by_confirm_waiting() -> None:
    assert confirm_waiting(provisional(96)).skipped == "no confirmation waiting"


def test_edited_points_use_the_terms_at_order_time_and_a_negative_line_counts_against_its_sku() -> None:
    ordered_on = date(2025, 3, 12)
    double = (Campaign(2, date(2025, 3, 1), date(2025, 3, 31), frozenset({"TEA"})),)
    terms = EarningTerms.at_acceptance(ordered_on, date(2021, 6, 1), ShopPointsSettings(rate_percent=1, campaigns=double))
    lines = [EarningLine("TEA", 3000), EarningLine("TEA", -1000), EarningLine("CUP", 5500), EarningLine("FEE", -200)]
    assert terms.points_for(lines) == (2000 * 2 + 5500) // 100
    joined_after = EarningTerms.at_acceptance(ordered_on, date(2025, 3, 13), ShopPointsSettings())
    assert joined_after.points_for(lines) == 0


def test_a_return_recomputes_provisional_points_and_deducts_confirmed_ones_with_debt_beyond_the_balance() -> None:
    from ordermesh_points.domain.edits import honour_return

    order_id = uuid4()
    provisional = OrderPoints(order_id, status="provisional", points=40)
    decision = honour_return(provisional, edit_no=1, points=30, balance=Balance(available=100), allow_negative=False)
    assert kinds(decision.entries) == [("reversed", 10)] and decision.order.points == 30
    [notice] = decision.notices
    assert (notice.previous_provisional, notice.provisional, notice.confirmed_deducted) == (40, 30, 0)

    confirmed = OrderPoints(order_id, status="confirmed", points=40)
    decision = honour_return(confirmed, edit_no=1, points=10, balance=Balance(available=20), allow_negative=False)
    assert kinds(decision.entries) == [("deducted", 20), ("debt", 10)]
    [notice] = decision.notices
    assert (notice.confirmed_deducted, notice.debt, notice.confirmed_unchanged) == (20, 10, False)
    assert decision.order.points == 10 and decision.order.edit_no == 1
    assert honour_return(decision.order, edit_no=1, points=0, balance=Balance(), allow_negative=False).skipped
