"""What a card order costs the payments database: statements and transactions per handled message type, counted on a
real PostgreSQL through a query logger on every pooled connection, with the sandbox gateway served in-process (a
budget that cannot silently grow)."""

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
from ordermesh_contracts import OrderAccepted, OrdersEvent, ShipmentDelivered, ShipmentShipped, ShippingEvent, topics
from ordermesh_payments.adapters.credit import SandboxCreditProvider
from ordermesh_payments.adapters.gateway import Gateways, SandboxGateway
from ordermesh_payments.handlers import PaymentHandlers, goes_alone
from ordermesh_payments.handlers_deferred import DeferredPayments
from ordermesh_payments.store import DEFAULT_SETTINGS, save_payment_settings
from ordermesh_servicekit.consuming import Consumer, Subscription
from ordermesh_servicekit.metrics import Metrics
from support import counted_pool, golden_message, statements_of
from doubles import FakeRecord, StatementCounter


@pytest.fixture
async def counted(fresh_database: str) -> AsyncIterator[tuple[asyncpg.Pool, StatementCounter]]:
    async with counted_pool(fresh_database, "payments") as counted:
        yield counted


@pytest.fixture
def payments(sandbox_http) -> PaymentHandlers:
    return PaymentHandlers(Gateways({"sandbox": SandboxGateway(sandbox_http)}), DeferredPayments(SandboxCreditProvider(sandbox_http)))


async def test_a_card_order_costs_the_payments_database_a_bounded_number_of_statements_per_message(counted, payments) -> None:
    pool, counter = counted
    order = OrderAccepted.model_validate(golden_message("OrderAccepted", order_id=str(uuid4())))
    about = {"order_id": str(order.order_id), "shop_id": order.shop_id}
    shipped = ShipmentShipped.model_validate(golden_message("ShipmentShipped", **about))
    partly = ShipmentShipped.model_validate(golden_message("ShipmentShipped", **about, all_shipped=False))
    delivered = ShipmentDelivered.model_validate(golden_message("ShipmentDelivered", **about, cash_collected=None))
    costs = {
        "authorize": await statements_of(pool, counter, payments.on_order_accepted, order, topics.ORDERS_EVENTS),
        "authorize redelivered": await statements_of(pool, counter, payments.on_order_accepted, order, topics.ORDERS_EVENTS),
        "partly shipped": await statements_of(pool, counter, payments.on_shipment_shipped, partly, topics.SHIPPING_EVENTS),
        "capture": await statements_of(pool, counter, payments.on_shipment_shipped, shipped, topics.SHIPPING_EVENTS),
        "capture redelivered": await statements_of(pool, counter, payments.on_shipment_shipped, shipped, topics.SHIPPING_EVENTS),
        "delivered, no cash": await statements_of(pool, counter, payments.on_cash_collected, delivered, topics.SHIPPING_EVENTS),
    }
    async with pool.acquire() as conn:
        settings = {**DEFAULT_SETTINGS, "capture_at_authorization": True}
        await save_payment_settings(conn, "capturing-shop", **settings, updated_by="staff:test")
    at_once = OrderAccepted.model_validate(golden_message("OrderAccepted", order_id=str(uuid4()), shop_id="capturing-shop"))
    costs["authorize and capture"] = await statements_of(pool, counter, payments.on_order_accepted, at_once, topics.ORDERS_EVENTS)
    deferred = OrderAccepted.model_validate(golden_message("OrderAccepted", order_id=str(uuid4()), payment={"method": "deferred"}))
    costs["credit check"] = await statements_of(pool, counter, payments.on_order_accepted, deferred, topics.ORDERS_EVENTS)

    payment = await pool.fetchrow("SELECT status, captured_amount FROM payments WHERE order_id = $1", order.order_id)
    assert (payment["status"], payment["captured_amount"]) == ("captured", order.charges.total)
    calls = await pool.fetch("SELECT operation, status FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at", order.order_id)
    assert [tuple(call) for call in calls] == [("authorize", "succeeded"), ("capture", "succeeded")]
    calls = await pool.fetch("SELECT operation, status FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at", at_once.order_id)
    assert [tuple(call) for call in calls] == [("authorize", "succeeded"), ("capture", "succeeded")]
    types = await pool.fetch("SELECT headers->0->>1 AS type FROM outbox ORDER BY id")
    assert [row["type"] for row in types][:4] == ["PaymentAuthorized", "PaymentCaptured"] * 2
    assert [row["type"] for row in types][4].startswith("CreditCheck")
    print("\ncost (statements, transactions):", costs)
    # Before the loads were merged: authorize 15/3 (the inbox looked at, an intent of 6 statements, the result of 4),
    # capture 12/3, authorize and capture at once 22/4, a deferred payment's credit check 15/3, a redelivery 1/1, a
    # delivery without cash 3/1. Then an intent was BEGIN, one load, one save, COMMIT and a result BEGIN, one save,
    # inbox and outbox, COMMIT (9/2); a redelivery BEGIN, load, ROLLBACK. Now a card's call is three statements, none
    # in a transaction: the load, the intent saved on the payment row as loaded (else decided again), and the result
    # with the inbox and outbox rows; a redelivery finds the inbox row in the load.
    statements = {name: count for name, (count, _) in costs.items()}
    transactions = {name: count for name, (_, count) in costs.items()}
    for call in ("authorize", "capture", "authorize redelivered", "capture redelivered"):
        assert transactions[call] == statements[call], costs  # no BEGIN/COMMIT: each statement atomic on its own
    assert statements["authorize"] <= 3 and statements["capture"] <= 3, costs
    assert statements["authorize and capture"] <= 7 and transactions["authorize and capture"] <= 4, costs
    assert statements["credit check"] <= 8 and transactions["credit check"] <= 3, costs  # its load and intent as a card's
    assert statements["authorize redelivered"] <= 1 and statements["capture redelivered"] <= 1, costs
    assert statements["partly shipped"] == 0 and statements["delivered, no cash"] == 0, costs


def as_record(topic: str, message, offset: int) -> FakeRecord:
    key = str(message.order_id).encode()
    return FakeRecord(topic, 0, offset, key, message.model_dump_json().encode(), [("type", message.type.encode())])


def consumer_of(subscription: Subscription, pool) -> Consumer:
    return Consumer(subscription, group_id="ordermesh-payments", pool_provider=lambda: pool, metrics=Metrics("payments"), retry_max_seconds=0.2)


def accepted(method: str) -> OrderAccepted:
    payment = {"method": method, "card_token": "tok_visa"} if method == "card" else {"method": method}
    return OrderAccepted.model_validate(golden_message("OrderAccepted", order_id=str(uuid4()), payment=payment))


async def test_acceptances_paid_without_a_gateway_share_one_transaction_and_each_card_authorization_goes_alone(counted, payments) -> None:
    pool, counter = counted
    consumer = consumer_of(Subscription(
        topics.ORDERS_EVENTS, OrdersEvent, {OrderAccepted: payments.on_order_accepted}, batched=True, alone=goes_alone,
    ), pool)
    await consumer.process([as_record(topics.ORDERS_EVENTS, accepted("cash_on_delivery"), 0) for _ in range(2)])  # types looked up
    cash, card = [accepted("cash_on_delivery") for _ in range(8)], [accepted("card") for _ in range(3)]
    await asyncio.sleep(0)
    counter.reset()
    await consumer.process([as_record(topics.ORDERS_EVENTS, order, n) for n, order in enumerate(cash + card)])
    await asyncio.sleep(0)
    statements, transactions = len(counter.statements), counter.transactions

    statuses = await pool.fetch(
        "SELECT method, status FROM payments WHERE order_id = ANY($1::uuid[])", [o.order_id for o in cash + card]
    )
    assert sorted(tuple(row) for row in statuses) == [("card", "authorized")] * 3 + [("cash_on_delivery", "awaiting_delivery")] * 8
    print(f"\n8 cash-on-delivery and 3 card acceptances: {statements} statements, {transactions} transactions")
    assert transactions == 1 + 3 * 3  # the batch; then each card's load, intent and result (see the card order's costs)


async def test_deliveries_without_cash_and_partial_shipments_cost_no_transaction_and_cash_collected_is_batched(counted, payments) -> None:
    pool, counter = counted
    orders = [accepted("cash_on_delivery") for _ in range(4)] + [accepted("card") for _ in range(4)]
    for order in orders:
        await statements_of(pool, counter, payments.on_order_accepted, order, topics.ORDERS_EVENTS)
    consumer = consumer_of(Subscription(
        topics.SHIPPING_EVENTS, ShippingEvent,
        {ShipmentShipped: payments.on_shipment_shipped, ShipmentDelivered: payments.on_cash_collected},
        batched=True, alone=goes_alone,
    ), pool)
    about = lambda order: {"order_id": str(order.order_id), "shop_id": order.shop_id}  # noqa: E731
    no_cost = [
        *(ShipmentShipped.model_validate(golden_message("ShipmentShipped", **about(o), all_shipped=False)) for o in orders[4:]),
        *(ShipmentDelivered.model_validate(golden_message("ShipmentDelivered", **about(o), cash_collected=None)) for o in orders[4:]),
    ]
    await asyncio.sleep(0)
    counter.reset()
    await consumer.process([as_record(topics.SHIPPING_EVENTS, message, n) for n, message in enumerate(no_cost)])
    await asyncio.sleep(0)
    assert (len(counter.statements), counter.transactions) == (0, 0), counter.statements

    cash = [
        ShipmentDelivered.model_validate(golden_message(
            "ShipmentDelivered", **about(o), shipment_id=str(uuid4()), cash_collected=o.charges.total,
        ))
        for o in orders[:4]
    ]
    counter.reset()
    await consumer.process([as_record(topics.SHIPPING_EVENTS, message, n) for n, message in enumerate(cash)])
    await asyncio.sleep(0)
    assert counter.transactions == 1, counter.statements
    received = await pool.fetch("SELECT received_amount FROM payments WHERE order_id = ANY($1::uuid[])", [o.order_id for o in orders[:4]])
    assert [row["received_amount"] for row in received] == [orders[0].charges.total] * 4
