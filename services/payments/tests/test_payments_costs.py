"""What a card order costs the payments database: statements and transactions per handled message type, counted on a
real PostgreSQL through a query logger on every pooled connection, with the sandbox gateway served in-process (a
budget that cannot silently grow)."""

from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
from ordermesh_contracts import OrderAccepted, ShipmentDelivered, ShipmentShipped, topics
from ordermesh_payments.adapters.credit import SandboxCreditProvider
from ordermesh_payments.adapters.gateway import Gateways, SandboxGateway
from ordermesh_payments.handlers import PaymentHandlers
from ordermesh_payments.handlers_deferred import DeferredPayments
from ordermesh_payments.store import DEFAULT_SETTINGS, save_payment_settings
from support import counted_pool, golden_message, statements_of
from doubles import StatementCounter


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
    # delivery without cash 3/1. Now an intent is BEGIN, one load, one save, COMMIT and a result BEGIN, inbox, one
    # save, outbox, COMMIT; a redelivery finds the inbox row in the load (BEGIN, load, ROLLBACK).
    statements = {name: count for name, (count, _) in costs.items()}
    transactions = {name: count for name, (_, count) in costs.items()}
    assert statements["authorize"] <= 9 and transactions["authorize"] <= 2, costs
    assert statements["capture"] <= 9 and transactions["capture"] <= 2, costs
    assert statements["authorize and capture"] <= 13 and transactions["authorize and capture"] <= 3, costs
    assert statements["credit check"] <= 11 and transactions["credit check"] <= 2, costs  # + the check recorded
    assert statements["authorize redelivered"] <= 3 and statements["capture redelivered"] <= 3, costs
    assert transactions["authorize redelivered"] <= 1 and transactions["capture redelivered"] <= 1, costs
    assert statements["partly shipped"] == 0 and statements["delivered, no cash"] == 0, costs
