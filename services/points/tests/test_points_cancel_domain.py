"""Cancelling an order in the ledger without I/O: every starting point ends in one PointsReversed answer,
confirmed points are taken back by entries (never removed), and a cancelled order holds nothing afterwards."""

from uuid import uuid4

from ordermesh_points.domain.ledger import (
    Balance,
    Entry,
    Kind,
    OrderPoints,
    Reversed,
    accrue,
    balance_of,
    cancel,
    change_reservation,
    confirm,
    reserve,
)


def kinds(entries) -> list[tuple[str, int]]:
    return [(entry.kind.value, entry.points) for entry in entries]


def test_an_order_points_never_heard_of_is_cancelled_with_a_zero_answer_and_later_accepts_book_nothing() -> None:
    cancelled = cancel(OrderPoints(uuid4()), Balance(available=500), allow_negative=False)
    assert cancelled.entries == ()
    assert cancelled.notices == (Reversed(reversed=0, deducted=0, debt=0, released=0),)
    assert cancelled.order.status == "reversed"
    late = accrue(cancelled.order, 96)
    assert late.entries == () and late.notices == ()
    held = reserve(late.order, 200, Balance(available=500))
    assert held.entries == () and held.notices == () and held.skipped == "order cancelled"


def test_a_cancelled_order_cannot_take_points_through_an_edit_of_points_used() -> None:
    cancelled = cancel(accrue(OrderPoints(uuid4()), 40).order, Balance(provisional=40), allow_negative=False)
    edited = change_reservation(cancelled.order, 100, Balance(available=1000))
    assert edited.entries == () and edited.skipped == "order cancelled"


def test_cancelling_confirmed_points_with_points_used_releases_first_and_deducts_from_what_came_back() -> None:
    order = reserve(confirm(accrue(OrderPoints(uuid4()), 96).order).order, 50, Balance(available=96)).order
    ledger = (Entry(Kind.ACCRUED, 96), Entry(Kind.CONFIRMED, 96), Entry(Kind.RESERVED, 50))
    cancelled = cancel(order, balance_of(ledger), allow_negative=False)
    assert kinds(cancelled.entries) == [("released", 50), ("deducted", 96)]
    assert cancelled.notices == (Reversed(reversed=0, deducted=96, debt=0, released=50),)
    after = balance_of(ledger + cancelled.entries)
    assert after == Balance(available=0, lifetime=96)


def test_cancelling_confirmed_points_the_customer_already_spent_books_the_deduction_and_the_rest_as_debt_never_a_negative_balance() -> None:
    order = confirm(accrue(OrderPoints(uuid4()), 300).order).order
    ledger = (Entry(Kind.ACCRUED, 300), Entry(Kind.CONFIRMED, 300), Entry(Kind.RESERVED, 250), Entry(Kind.COMMITTED, 250))
    cancelled = cancel(order, balance_of(ledger), allow_negative=False)
    assert kinds(cancelled.entries) == [("deducted", 50), ("debt", 250)]
    assert {entry.order_id for entry in cancelled.entries} == {order.order_id}
    after = balance_of(ledger + cancelled.entries)
    assert (after.available, after.debt, after.lifetime) == (0, 250, 300)
    assert ("confirmed", 300) in kinds(ledger)


def test_cancelling_twice_books_and_announces_nothing_the_second_time() -> None:
    first = cancel(accrue(OrderPoints(uuid4()), 96).order, Balance(provisional=96), allow_negative=False)
    again = cancel(first.order, Balance(), allow_negative=False)
    assert again.entries == () and again.notices == () and again.skipped == "order cancelled"
