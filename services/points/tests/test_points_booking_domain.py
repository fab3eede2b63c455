"""The booking a points handler gathers in memory: the running balance, entries with their cause, debt paid, notices."""

from dataclasses import dataclass, field
from datetime import datetime, timezone
from uuid import UUID, uuid4

from ordermesh_points.domain import booking, ledger
from ordermesh_points.domain.ledger import Balance, Entry, Kind, OrderPoints


@dataclass(frozen=True)
class Cause:
    event_id: UUID = field(default_factory=uuid4)
    occurred_at: datetime = datetime(2026, 12, 2, tzinfo=timezone.utc)


ORDER = OrderPoints(order_id=uuid4())


def test_decisions_in_turn_carry_the_balance_so_a_reservation_sees_what_an_accrual_confirmed() -> None:
    acceptance = Cause()
    booked = booking.start(ORDER, Balance(available=5))
    booked = booking.book(booked, ledger.accrue(ORDER, 0 + 20), acceptance)
    booked = booking.book(booked, ledger.reserve(booked.order, 25, booked.balance), acceptance)
    assert [(b.item.kind, b.item.points) for b in booked.entries] == [(Kind.ACCRUED, 20)]
    assert booked.order.reservation == "failed" and booked.balance == Balance(available=5, provisional=20)
    assert [type(b.item).__name__ for b in booked.notices] == ["Accrued", "RedemptionFailed"]


def test_confirmed_points_pay_the_customers_debt_as_far_as_they_go() -> None:
    payment = Cause()
    provisional = OrderPoints(order_id=ORDER.order_id, status="provisional", points=30)
    booked = booking.book(booking.start(provisional, Balance(provisional=30, debt=50)), ledger.confirm(provisional), payment)
    assert [(b.item.kind, b.item.points) for b in booked.entries] == [(Kind.CONFIRMED, 30), (Kind.DEBT_SETTLED, 30)]
    assert (booked.balance.available, booked.balance.debt) == (0, 20)
    assert all(b.cause is payment for b in booked.entries)


def test_an_entry_its_cause_booked_already_for_the_order_is_left_out_as_the_ledger_would() -> None:
    cause, other = Cause(), Cause()
    twice = ledger.Decision(ORDER, (Entry(Kind.GRANTED, 7, ORDER.order_id),))
    booked = booking.book(booking.start(ORDER, Balance()), twice, cause)
    booked = booking.book(booked, twice, cause)
    booked = booking.book(booked, twice, other)
    assert [(b.cause, b.item.points) for b in booked.entries] == [(cause, 7), (other, 7)]
    assert booked.balance.available == 14


def test_without_a_customer_a_decision_changes_the_order_only() -> None:
    booked = booking.book(booking.start(ORDER, None), ledger.accrue(ORDER, 20), Cause())
    assert booked.order.status == "provisional" and booked.order.points == 20
    assert booked.entries == () and booked.notices == ()
