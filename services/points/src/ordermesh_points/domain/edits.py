"""How an order edit changes the order's points: provisional points follow the new merchandise, the points held
follow the new points used, and confirmed points never change."""

from dataclasses import replace
from datetime import datetime

from .ledger import (
    Balance,
    Decision,
    Entry,
    Kind,
    OrderPoints,
    Recomputed,
    RedemptionFailed,
    accrue,
    change_reservation,
    deduction,
)


def honour_edit(order: OrderPoints, *, edit_no: int, points: int, points_used: int, balance: Balance) -> Decision:
    """Honours edit `edit_no`, after which the order earns `points` and uses `points_used`.

    Provisional points move by the difference (an accrual or a reversal, never an edit in place); confirmed ones stay.
    Fewer points used are given back; more are held only if the balance carries them, else the old hold stands and
    a `RedemptionFailed` follows the `Recomputed`. An edit before the accrual waits for it; a cancelled order and an
    edit already honoured (or older than one honoured) change nothing.
    """
    if edit_no <= order.edit_no or (order.status == "awaiting_accrual" and edit_no <= order.pending_edit_no):
        return Decision(order, skipped=f"edit {edit_no} already honoured")
    if order.status == "reversed":
        return Decision(replace(order, edit_no=edit_no), skipped="order cancelled")
    if order.status == "awaiting_accrual":
        return Decision(replace(order, pending_edit_no=edit_no), skipped="points not accrued yet; the edit is honoured on accrual")
    earned, entries = _follow_merchandise(order, points)
    held = change_reservation(earned, points_used, balance.after_all(entries))
    state = replace(held.order, edit_no=edit_no, pending_edit_no=0)
    notice = Recomputed(
        edit_no=edit_no,
        previous_provisional=_provisional(order),
        provisional=_provisional(state),
        previous_points_used=order.reserved,
        points_used=state.reserved,
        confirmed_unchanged=order.status == "confirmed",
    )
    failed = tuple(n for n in held.notices if isinstance(n, RedemptionFailed))
    return Decision(state, entries + held.entries, (notice, *failed))


def _follow_merchandise(order: OrderPoints, points: int) -> tuple[OrderPoints, tuple[Entry, ...]]:
    if order.status != "provisional" or points == order.points:
        return order, ()
    kind = Kind.ACCRUED if points > order.points else Kind.REVERSED
    return replace(order, points=points), (Entry(kind, abs(points - order.points), order.order_id),)


def _provisional(order: OrderPoints) -> int:
    return order.points if order.status == "provisional" else 0


def accrue_before_edit(order: OrderPoints, points: int, edited_at: datetime) -> Decision:
    """A late accrual with an edit waiting for it. A confirmation asked for by a payment made after the edit waits
    until the edit is honoured (`confirm_waiting`), so the order ends as if everything had come in order; one made
    before the edit confirms at once, and the edit then leaves the confirmed points alone."""
    if points == 0 or not order.confirm_requested or (order.paid_at is not None and order.paid_at <= edited_at):
        return accrue(order, points)
    decision = accrue(replace(order, confirm_requested=False), points)
    return replace(decision, order=replace(decision.order, confirm_requested=True))


def honour_return(order: OrderPoints, *, edit_no: int, points: int, balance: Balance, allow_negative: bool) -> Decision:
    """Honours a return (numbered `edit_no` in the order's edit sequence), after which the order earns `points`.

    Provisional points follow the lower merchandise (a reversal of the difference); confirmed points of what came
    back are deducted (debt where the balance can't carry them, unless the shop allows negative balances). Points
    used stay. A return already honoured, or of a cancelled order, changes nothing.
    """
    if edit_no <= order.edit_no:
        return Decision(order, skipped=f"edit {edit_no} already honoured")
    if order.status in ("reversed", "awaiting_accrual"):
        return Decision(replace(order, edit_no=edit_no), skipped=f"no points to take back ({order.status})")
    if order.status == "provisional":
        state, entries = _follow_merchandise(order, points)
        taken: tuple[Entry, ...] = ()
    else:
        taken = tuple(
            replace(entry, order_id=order.order_id)
            for entry in deduction(balance, max(order.points - points, 0), allow_negative=allow_negative)
        )
        state, entries = replace(order, points=min(points, order.points)), ()
    state = replace(state, edit_no=edit_no, pending_edit_no=0)
    notice = Recomputed(
        edit_no=edit_no,
        previous_provisional=_provisional(order),
        provisional=_provisional(state),
        previous_points_used=order.reserved,
        points_used=state.reserved,
        confirmed_unchanged=order.status != "confirmed" or not taken,
        confirmed_deducted=sum(e.points for e in taken if e.kind is Kind.DEDUCTED),
        debt=sum(e.points for e in taken if e.kind is Kind.DEBT),
    )
    return Decision(state, entries + taken, (notice,))
