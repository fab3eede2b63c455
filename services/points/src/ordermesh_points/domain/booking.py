"""What one message does to one order's points, gathered in memory so that it is saved with one statement: the
decisions taken in turn, the ledger entries they book (with the debt they let be paid) and the notices to announce,
each with the message that caused it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from .ledger import Balance, Decision, Entry, Notice, OrderPoints, settle_debt


class Cause(Protocol):
    """The message a decision answers: its id is the ledger's once-per-cause key, its time the entries' time."""

    event_id: UUID
    occurred_at: datetime


@dataclass(frozen=True)
class Booked:
    """An entry to append, or a notice to publish, and the message that caused it."""

    cause: Cause
    item: Entry | Notice


@dataclass(frozen=True)
class Booking:
    """The order's points after the decisions so far, the customer's balance after their entries, the entries to
    append (in order) and the notices to publish. Without a customer, decisions change the order only: there is no
    ledger to book into and nothing to announce."""

    order: OrderPoints
    balance: Balance
    has_customer: bool
    entries: tuple[Booked, ...] = ()
    notices: tuple[Booked, ...] = ()


def start(order: OrderPoints, balance: Balance | None) -> Booking:
    """A booking of the order as loaded; `balance` is the customer's (locked), None when the order has no customer."""
    return Booking(order, balance or Balance(), balance is not None)


def book(booking: Booking, decision: Decision, cause: Cause) -> Booking:
    """Adds `cause`'s decision: the order's new state, its entries and the debt the balance after them can pay, its
    notices.

    An entry of a kind `cause` already booked for the same order is left out, as the ledger's once-per-cause rule
    would leave it out, so the balance carried on is the ledger's.
    """
    if not booking.has_customer:
        return Booking(decision.order, booking.balance, False)
    entries = _not_booked_yet(booking.entries, decision.entries, cause)
    after = booking.balance.after_all(e.item for e in entries)
    debt_paid = tuple(Entry(e.kind, e.points, decision.order.order_id) for e in settle_debt(after))
    settled = _not_booked_yet(booking.entries + entries, debt_paid, cause)
    return Booking(
        decision.order,
        after.after_all(e.item for e in settled),
        True,
        booking.entries + entries + settled,
        booking.notices + tuple(Booked(cause, notice) for notice in decision.notices),
    )


def _not_booked_yet(booked: tuple[Booked, ...], entries: tuple[Entry, ...], cause: Cause) -> tuple[Booked, ...]:
    seen = {(b.cause.event_id, b.item.kind, b.item.order_id) for b in booked}
    kept = []
    for entry in entries:
        key = (cause.event_id, entry.kind, entry.order_id)
        if key not in seen:
            seen.add(key)
            kept.append(Booked(cause, entry))
    return tuple(kept)
