"""Property: no sequence of operations makes a customer's balances disagree with the ledger, or go negative unless allowed."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st
from ordermesh_points.domain import edits as E
from ordermesh_points.domain import ledger as L

ORDERS = 3
points = st.sampled_from([0, 1, 40, 100, 250])
order_no = st.integers(min_value=0, max_value=ORDERS - 1)
operation = st.one_of(
    st.tuples(st.just("accept"), order_no, points, points),
    st.tuples(st.just("pay"), order_no),
    st.tuples(st.just("staff_confirm"), order_no),
    st.tuples(st.just("cancel"), order_no),
    st.tuples(st.just("complete"), order_no),
    st.tuples(st.just("edit_points"), order_no, points),
    st.tuples(st.just("edit_used"), order_no, points),
    st.tuples(st.just("grant"), st.sampled_from([-5, 0, 1, 100, 500])),
    st.tuples(st.just("deduct"), st.sampled_from([-5, 0, 1, 100, 400])),
    st.tuples(st.just("expire"), st.integers(min_value=0, max_value=900)),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=200)),
)


@dataclass
class Customer:
    allow_negative: bool
    today: date = date(2024, 1, 1)
    entries: list[L.Entry] = field(default_factory=list)
    orders: dict[int, L.OrderPoints] = field(default_factory=dict)

    def balance(self) -> L.Balance:
        return L.balance_of(self.entries)

    def book(self, entries) -> None:
        dated = [L.Entry(e.kind, e.points, e.order_id, e.on or self.today) for e in entries]
        self.entries.extend(dated)
        self.entries.extend(L.Entry(e.kind, e.points, on=self.today) for e in L.settle_debt(self.balance()))

    def decide(self, number: int, decision: L.Decision | None) -> None:
        if decision is None:
            return
        self.orders[number] = decision.order
        self.book(decision.entries)

    def apply(self, op: tuple) -> None:
        name, *args = op
        order = self.orders.get(args[0]) if args and name not in ("grant", "deduct", "expire", "wait") else None
        if name == "accept":
            number, earned, used = args
            if number in self.orders:
                return
            state = L.OrderPoints(uuid4())
            self.decide(number, L.accrue(state, earned))
            self.decide(number, L.reserve(self.orders[number], used, self.balance()))
        elif name == "pay" and order:
            self.decide(args[0], L.confirm(order.__class__(**{**order.__dict__, "paid": True})))
        elif name == "staff_confirm" and order:
            self.decide(args[0], L.confirm_by_staff(order))
        elif name == "cancel" and order:
            self.decide(args[0], L.cancel(order, self.balance(), allow_negative=self.allow_negative))
        elif name == "complete" and order:
            self.decide(args[0], L.commit(order))
        elif name == "edit_points" and order:
            self.decide(args[0], E.honour_edit(order, edit_no=order.edit_no + 1, points=args[1], points_used=order.reserved, balance=self.balance()))
        elif name == "edit_used" and order:
            self.decide(args[0], E.honour_edit(order, edit_no=order.edit_no + 1, points=order.points, points_used=args[1], balance=self.balance()))
        elif name == "grant":
            self.book(L.grant(self.balance(), args[0], "goodwill", customer_known=True)[0])
        elif name == "deduct":
            self.book(
                L.deduct(self.balance(), args[0], "correction", customer_known=True, allow_negative=self.allow_negative)[0]
            )
        elif name == "expire":
            self.book(L.expire(self.entries, as_of=self.today, months=1 + args[0] % 24))
        elif name == "wait":
            self.today += timedelta(days=args[0])


def by_kind(entries, kind: L.Kind) -> int:
    return sum(e.points for e in entries if e.kind is kind)


def check(customer: Customer) -> None:
    entries, balance, K = customer.entries, customer.balance(), L.Kind
    # the balances, added up kind by kind without the EFFECTS table
    assert balance.provisional == by_kind(entries, K.ACCRUED) - by_kind(entries, K.CONFIRMED) - by_kind(entries, K.REVERSED)
    assert balance.available == (
        by_kind(entries, K.CONFIRMED) + by_kind(entries, K.GRANTED) + by_kind(entries, K.RELEASED)
        - by_kind(entries, K.RESERVED) - by_kind(entries, K.DEDUCTED) - by_kind(entries, K.EXPIRED)
        - by_kind(entries, K.DEBT_SETTLED)
    )
    assert balance.reserved == by_kind(entries, K.RESERVED) - by_kind(entries, K.RELEASED) - by_kind(entries, K.COMMITTED)
    assert balance.used == by_kind(entries, K.COMMITTED)
    assert balance.debt == by_kind(entries, K.DEBT) - by_kind(entries, K.DEBT_SETTLED)
    assert L.ledger_sum(entries) == balance.available + balance.provisional + balance.reserved + balance.used
    # the orders' own state agrees with the ledger
    orders = customer.orders.values()
    assert balance.provisional == sum(o.points for o in orders if o.status == "provisional")
    assert balance.reserved == sum(o.reserved for o in orders if o.reservation == "reserved")
    assert balance.used == sum(o.reserved for o in orders if o.reservation == "committed")
    for order in orders:
        mine = [e for e in entries if e.order_id == order.order_id]
        assert by_kind(mine, K.CONFIRMED) <= by_kind(mine, K.ACCRUED)
    # never negative, unless the shop allows a negative available balance
    assert min(balance.provisional, balance.reserved, balance.used, balance.debt) >= 0
    if not customer.allow_negative:
        assert balance.available >= 0
    assert balance.debt == 0 or balance.available <= 0


@settings(max_examples=1500, deadline=None)
@given(allow_negative=st.booleans(), operations=st.lists(operation, max_size=40))
def test_no_sequence_of_operations_makes_the_balances_disagree_with_the_ledger_or_go_negative(allow_negative, operations):
    customer = Customer(allow_negative=allow_negative)
    lifetime = 0
    for op in operations:
        customer.apply(op)
        check(customer)
        assert customer.balance().lifetime >= lifetime
        lifetime = customer.balance().lifetime
