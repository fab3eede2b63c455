"""The points ledger without I/O: entries, balances derived from them, and every decision that books entries.

A customer's ledger (per shop) is append-only. Each entry has a kind and a positive number of points;
its kind says which balances it moves (`EFFECTS`). Balances are never stored: they are the fold of the
entries. Decisions take the order's points state and the customer's balance and return the new order
state, the entries to append and notices (what to announce), and never make `available` negative
unless the shop allows it.
"""

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID


class Kind(StrEnum):
    """What a ledger entry did."""

    ACCRUED = "accrued"
    CONFIRMED = "confirmed"
    REVERSED = "reversed"
    RESERVED = "reserved"
    RELEASED = "released"
    COMMITTED = "committed"
    GRANTED = "granted"
    DEDUCTED = "deducted"
    EXPIRED = "expired"
    DEBT = "debt"
    DEBT_SETTLED = "debt_settled"


EFFECTS: dict[Kind, dict[str, int]] = {
    Kind.ACCRUED: {"provisional": +1},
    Kind.CONFIRMED: {"provisional": -1, "available": +1, "lifetime": +1},
    Kind.REVERSED: {"provisional": -1},
    Kind.RESERVED: {"available": -1, "reserved": +1},
    Kind.RELEASED: {"reserved": -1, "available": +1},
    Kind.COMMITTED: {"reserved": -1, "used": +1},
    Kind.GRANTED: {"available": +1, "lifetime": +1},
    Kind.DEDUCTED: {"available": -1},
    Kind.EXPIRED: {"available": -1},
    Kind.DEBT: {"debt": +1},
    Kind.DEBT_SETTLED: {"available": -1, "debt": -1},
}
"""How one point of each kind of entry moves each balance."""

SIGN: dict[Kind, int] = {Kind.ACCRUED: +1, Kind.GRANTED: +1, Kind.REVERSED: -1, Kind.DEDUCTED: -1, Kind.EXPIRED: -1, Kind.DEBT_SETTLED: -1}
"""Entries that add points to or take them from the customer; the others move points between balances."""


@dataclass(frozen=True)
class Entry:
    """One ledger entry: a kind and a positive number of points, maybe for an order, at a time (set when booked)."""

    kind: Kind
    points: int
    order_id: UUID | None = None
    on: date | None = None

    def __post_init__(self) -> None:
        if self.points <= 0:
            raise ValueError(f"a ledger entry books a positive number of points, not {self.points}")


@dataclass(frozen=True)
class Balance:
    """A customer's balances: available to spend, provisional (not yet confirmed), reserved for open orders,
    used on completed orders, lifetime (cumulative confirmed and granted) and debt the balance couldn't carry."""

    available: int = 0
    provisional: int = 0
    reserved: int = 0
    used: int = 0
    lifetime: int = 0
    debt: int = 0

    def after(self, entry: Entry) -> "Balance":
        """The balance once `entry` is booked."""
        moved = {name: getattr(self, name) + sign * entry.points for name, sign in EFFECTS[entry.kind].items()}
        return replace(self, **moved)

    def after_all(self, entries: Iterable[Entry]) -> "Balance":
        """The balance once every entry is booked."""
        balance = self
        for entry in entries:
            balance = balance.after(entry)
        return balance


def balance_of(entries: Iterable[Entry]) -> Balance:
    """The balance a ledger adds up to."""
    return Balance().after_all(entries)


def ledger_sum(entries: Iterable[Entry]) -> int:
    """Points the ledger gave the customer net: equals available + provisional + reserved + used."""
    return sum(SIGN.get(entry.kind, 0) * entry.points for entry in entries)


# --- notices: what a decision announces --------------------------------------------------------------


@dataclass(frozen=True)
class Accrued:
    """The order's provisional points are now `points`."""

    points: int


@dataclass(frozen=True)
class Confirmed:
    """The order's points (`points`, maybe 0) are confirmed."""

    points: int


@dataclass(frozen=True)
class Redeemed:
    """`points` are held for the order (points used)."""

    points: int


@dataclass(frozen=True)
class RedemptionFailed:
    """The order asked to use more points than the customer had available."""

    requested: int
    available: int


@dataclass(frozen=True)
class Reversed:
    """The order's points were undone: provisional reversed, confirmed deducted (the rest as debt), reserved released."""

    reversed: int
    deducted: int
    debt: int
    released: int


@dataclass(frozen=True)
class Recomputed:
    """An edit was honoured: the order's provisional points and the points it holds, before and after."""

    edit_no: int
    previous_provisional: int
    provisional: int
    previous_points_used: int
    points_used: int
    confirmed_unchanged: bool
    confirmed_deducted: int = 0
    debt: int = 0


Notice = Accrued | Confirmed | Redeemed | RedemptionFailed | Reversed | Recomputed

# --- one order's points --------------------------------------------------------------------------------

Status = Literal["awaiting_accrual", "provisional", "confirmed", "reversed"]
Reservation = Literal["none", "reserved", "failed", "committed", "released"]


@dataclass(frozen=True)
class OrderPoints:
    """Where one order's points stand: earned (`points`, by `status`), used (`reserved`, by `reservation`), the last
    edit honoured (`edit_no`) and an edit waiting for the accrual (`pending_edit_no`, 0 for none)."""

    order_id: UUID
    status: Status = "awaiting_accrual"
    points: int = 0
    confirm_requested: bool = False
    paid: bool = False
    reserved: int = 0
    reservation: Reservation = "none"
    paid_at: datetime | None = None
    edit_no: int = 0
    pending_edit_no: int = 0


@dataclass(frozen=True)
class Decision:
    """A decision's result: the order's new state, entries to book, notices to publish, or why nothing happened."""

    order: OrderPoints
    entries: tuple[Entry, ...] = ()
    notices: tuple[Notice, ...] = ()
    skipped: str | None = None


def _entry(kind: Kind, points: int, order: OrderPoints) -> tuple[Entry, ...]:
    return (Entry(kind, points, order.order_id),) if points > 0 else ()


def accrue(order: OrderPoints, points: int) -> Decision:
    """Books the order's provisional points; confirms them at once if nothing was earned or payment came first."""
    if order.status != "awaiting_accrual":
        return Decision(order, skipped=f"points already {order.status}")
    entries = _entry(Kind.ACCRUED, points, order)
    if points == 0 or order.confirm_requested:
        confirmed = replace(order, status="confirmed", points=points)
        return Decision(confirmed, entries + _entry(Kind.CONFIRMED, points, order), (Accrued(points), Confirmed(points)))
    return Decision(replace(order, status="provisional", points=points), entries, (Accrued(points),))


def confirm(order: OrderPoints) -> Decision:
    """Confirms provisional points once (payment confirmed); before the accrual it is remembered for it."""
    if order.status == "awaiting_accrual":
        return Decision(replace(order, confirm_requested=True), skipped="points not accrued yet; confirmed on accrual")
    if order.status != "provisional":
        return Decision(order, skipped="already confirmed" if order.status == "confirmed" else "order cancelled")
    return Decision(
        replace(order, status="confirmed"), _entry(Kind.CONFIRMED, order.points, order), (Confirmed(order.points),)
    )


def confirm_on_accrual(order: OrderPoints) -> OrderPoints:
    """A payment that confirms came before the accrual (and could be told apart only now): the accrual confirms."""
    return replace(order, confirm_requested=True) if order.status == "awaiting_accrual" else order


def confirm_waiting(order: OrderPoints) -> Decision:
    """Confirms provisional points whose confirmation was asked for before the accrual and held back for an edit."""
    if order.status != "provisional" or not order.confirm_requested:
        return Decision(order, skipped="no confirmation waiting")
    return confirm(order)


def confirm_by_staff(order: OrderPoints | None) -> Decision | None:
    """A staff (bulk) confirmation: only paid orders with provisional points; None if the order has no points record."""
    if order is None:
        return None
    if order.status == "confirmed":
        return Decision(order, skipped="already confirmed")
    if order.status == "reversed":
        return Decision(order, skipped="order cancelled")
    if order.status == "awaiting_accrual":
        return Decision(order, skipped="points not accrued yet")
    if not order.paid:
        return Decision(order, skipped="not paid")
    return confirm(order)


def deduction(balance: Balance, points: int, *, allow_negative: bool) -> tuple[Entry, ...]:
    """Takes confirmed points back: what the balance can carry is deducted, the rest is booked as debt
    (unless the shop allows negative balances, when all of it is deducted)."""
    if points <= 0:
        return ()
    if allow_negative:
        return (Entry(Kind.DEDUCTED, points),)
    carried = min(points, max(balance.available, 0))
    entries = (Entry(Kind.DEDUCTED, carried),) if carried else ()
    return entries + ((Entry(Kind.DEBT, points - carried),) if points > carried else ())


def _for_order(entries: tuple[Entry, ...], order: OrderPoints) -> tuple[Entry, ...]:
    return tuple(replace(entry, order_id=order.order_id) for entry in entries)


def reserve(order: OrderPoints, requested: int, balance: Balance) -> Decision:
    """Holds the points an order uses, at intake; refused (nothing held) when more than available are asked for.
    A cancelled order holds nothing."""
    if order.status == "reversed":
        return Decision(order, skipped="order cancelled")
    if requested <= 0 or order.reservation != "none":
        return Decision(order, skipped="nothing to reserve" if requested <= 0 else f"reservation {order.reservation}")
    if requested > balance.available:
        failed = replace(order, reservation="failed", reserved=0)
        return Decision(failed, notices=(RedemptionFailed(requested, max(balance.available, 0)),))
    held = replace(order, reservation="reserved", reserved=requested)
    return Decision(held, _entry(Kind.RESERVED, requested, order), (Redeemed(requested),))


def change_reservation(order: OrderPoints, requested: int, balance: Balance) -> Decision:
    """An edit changed the points used: release what is no longer used, hold more if the balance has it."""
    if order.status == "reversed":
        return Decision(order, skipped="order cancelled")
    if order.reservation in ("committed", "released"):
        return Decision(order, skipped=f"reservation {order.reservation}")
    if order.reservation in ("none", "failed"):
        return reserve(replace(order, reservation="none", reserved=0), requested, balance)
    delta = requested - order.reserved
    if delta == 0:
        return Decision(order, skipped="points used unchanged")
    if delta < 0:
        state = replace(order, reserved=requested, reservation="reserved" if requested else "released")
        return Decision(state, _entry(Kind.RELEASED, -delta, order), (Redeemed(requested),))
    if delta > balance.available:
        return Decision(order, notices=(RedemptionFailed(requested, order.reserved + max(balance.available, 0)),))
    return Decision(replace(order, reserved=requested), _entry(Kind.RESERVED, delta, order), (Redeemed(requested),))


def commit(order: OrderPoints) -> Decision:
    """The order completed: the points it holds are used for good."""
    if order.reservation != "reserved":
        return Decision(order, skipped=f"reservation {order.reservation}")
    return Decision(replace(order, reservation="committed"), _entry(Kind.COMMITTED, order.reserved, order))


def cancel(order: OrderPoints, balance: Balance, *, allow_negative: bool) -> Decision:
    """The order was cancelled: provisional points reversed, confirmed ones deducted (debt if the balance
    can't carry them), points it held released. Confirmed points are never deleted."""
    if order.status == "reversed":
        return Decision(order, skipped="order cancelled")
    released = _entry(Kind.RELEASED, order.reserved, order) if order.reservation == "reserved" else ()
    balance = balance.after_all(released)
    reversed_, taken_back = (), ()
    if order.status == "provisional":
        reversed_ = _entry(Kind.REVERSED, order.points, order)
    elif order.status == "confirmed":
        taken_back = _for_order(deduction(balance, order.points, allow_negative=allow_negative), order)
    state = replace(
        order, status="reversed", reservation="released" if released else order.reservation, reserved=0 if released else order.reserved
    )
    entries = released + reversed_ + taken_back
    notice = Reversed(
        reversed=sum(e.points for e in reversed_),
        deducted=sum(e.points for e in taken_back if e.kind is Kind.DEDUCTED),
        debt=sum(e.points for e in taken_back if e.kind is Kind.DEBT),
        released=sum(e.points for e in released),
    )
    return Decision(state, entries, (notice,))


# --- staff adjustments, debt and expiry -----------------------------------------------------------------


def adjustment_problems(points: int, reason: str | None, *, customer_known: bool) -> list[str]:
    """Every reason a manual grant or deduction can't be booked."""
    problems = []
    if points <= 0:
        problems.append(f"points must be a positive number, not {points}")
    if not customer_known:
        problems.append("unknown customer: no orders or points of this customer in this shop")
    if reason is None or not reason.strip():
        problems.append("a reason is required")
    return problems


def grant(balance: Balance, points: int, reason: str | None, *, customer_known: bool) -> tuple[tuple[Entry, ...], list[str]]:
    """Points given by staff with a reason (e.g. bonus for a customer who registered after buying)."""
    problems = adjustment_problems(points, reason, customer_known=customer_known)
    if problems:
        return (), problems
    return (Entry(Kind.GRANTED, points),), []


def deduct(
    balance: Balance, points: int, reason: str | None, *, customer_known: bool, allow_negative: bool
) -> tuple[tuple[Entry, ...], list[str]]:
    """Points taken by staff with a reason; no more than available unless the shop allows negative balances."""
    problems = adjustment_problems(points, reason, customer_known=customer_known)
    if points > 0 and not allow_negative and points > balance.available:
        problems.append(f"only {max(balance.available, 0)} points available; the shop does not allow a negative balance")
    if problems:
        return (), problems
    return (Entry(Kind.DEDUCTED, points),), []


def settle_debt(balance: Balance) -> tuple[Entry, ...]:
    """Pays off recorded debt from available points, as far as they go."""
    settled = min(balance.debt, balance.available)
    return (Entry(Kind.DEBT_SETTLED, settled),) if settled > 0 else ()


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day where it is shorter)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


CREDITS = (Kind.CONFIRMED, Kind.GRANTED)
SPENT = {Kind.RESERVED: +1, Kind.RELEASED: -1, Kind.DEDUCTED: +1, Kind.EXPIRED: +1, Kind.DEBT_SETTLED: +1}


def expiring_points(entries: Iterable[Entry], *, as_of: date, months: int) -> int:
    """Points to expire on `as_of`: confirmed or granted points at least `months` old that were not spent yet,
    spending the oldest first (FIFO). Asking twice for the same day gives 0 the second time."""
    entries = list(entries)
    old = sum(e.points for e in entries if e.kind in CREDITS and e.on is not None and add_months(e.on, months) <= as_of)
    spent = sum(SPENT.get(e.kind, 0) * e.points for e in entries)
    return max(0, min(old - spent, balance_of(entries).available))


def expire(entries: Iterable[Entry], *, as_of: date, months: int | None) -> tuple[Entry, ...]:
    """The expiry entry for `as_of` (none when the shop has no expiry or nothing is old enough)."""
    if months is None:
        return ()
    points = expiring_points(entries, as_of=as_of, months=months)
    return (Entry(Kind.EXPIRED, points, on=as_of),) if points else ()
