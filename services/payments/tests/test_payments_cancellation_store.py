"""Cancellation in the payments handlers and store, on a real PostgreSQL and the real sandbox gateway over HTTP:
the answer event, the gateway's own record, and no capture or charge of a cancelled order afterwards."""

import contextlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

import pytest
from ordermesh_contracts import (
    OrderAccepted,
    OrderCancelled,
    ProviderPaymentReported,
    RetryCapture,
    SetPaymentSettings,
    ShipmentShipped,
    topics,
)
from ordermesh_payments.adapters.credit import SandboxCreditProvider
from ordermesh_payments.adapters.gateway import Gateways, SandboxGateway
from ordermesh_payments.app import run_periodic_checks
from ordermesh_payments.handlers import PaymentHandlers
from ordermesh_payments.handlers_deferred import DeferredPayments
from ordermesh_payments.staff import StaffCommands
from ordermesh_servicekit.commands import CommandRefused
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext

GOLDEN = Path(__file__).parents[3] / "contracts" / "tests" / "golden"
SHOP = "kyoto-tea"


@pytest.fixture
def sandbox(sandbox_served):
    return sandbox_served


@pytest.fixture
def payments(sandbox_http) -> PaymentHandlers:
    return PaymentHandlers(Gateways({"sandbox": SandboxGateway(sandbox_http)}), DeferredPayments(SandboxCreditProvider(sandbox_http)))


async def deliver(pool, message, handler, topic: str = topics.ORDERS_EVENTS) -> None:
    with contextlib.suppress(DuplicateMessage):
        await handler(message, MessageContext(pool, message.event_id, topic, log=None))


def accepted(method: str = "card") -> OrderAccepted:
    raw = json.loads((GOLDEN / "OrderAccepted.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(uuid4()), shop_id=SHOP)
    raw["payment"] = {"method": method, "card_token": "tok_visa" if method == "card" else None}
    return OrderAccepted.model_validate(raw)


def cancelled(order: OrderAccepted, *, cancel_payment: bool = True) -> OrderCancelled:
    return OrderCancelled(
        order_id=order.order_id, shop_id=SHOP, external_order_no=order.external_order_no,
        customer_id=order.customer.customer_id, reason="customer asked by phone", restore_stock=True,
        cancel_payment=cancel_payment, notify_customer=False, cancelled_by="staff:sato",
    )


def shipped(order: OrderAccepted) -> ShipmentShipped:
    return ShipmentShipped(
        order_id=order.order_id, shop_id=SHOP, shipment_id=uuid4(), delivery_index=0, carrier="yamato",
        tracking_number="4829-1734-6502", shipped_at=datetime.now(timezone.utc), lines=[], all_shipped=True,
    )


async def published(pool) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.PAYMENTS_EVENTS)
    return [json.loads(bytes(row["payload"])) for row in rows]


async def payment_row(pool, order: OrderAccepted):
    return await pool.fetchrow("SELECT * FROM payments WHERE order_id = $1", order.order_id)


async def calls(pool, order: OrderAccepted) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT operation, status FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at", order.order_id)
    return [(row["operation"], row["status"]) for row in rows]


async def sandbox_authorization(sandbox, order: OrderAccepted) -> dict:
    [found] = (await sandbox[0].get("/v1/authorizations", params={"order_id": str(order.order_id)})).json()["authorizations"]
    return found


async def test_an_authorized_card_is_voided_at_the_gateway_and_a_later_shipment_captures_nothing(pool, payments, sandbox) -> None:
    order = accepted()
    await deliver(pool, order, payments.on_order_accepted)
    cancel = cancelled(order)
    await deliver(pool, cancel, payments.on_order_cancelled)
    await deliver(pool, cancel, payments.on_order_cancelled)
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)

    events = await published(pool)
    assert [e["type"] for e in events] == ["PaymentAuthorized", "PaymentCancelled"]
    answer = events[-1]
    assert (answer["outcome"], answer["amount"], answer["refund_owed"], answer["causation_id"]) == (
        "voided", order.charges.total, 0, str(cancel.event_id)
    )
    assert (await payment_row(pool, order))["status"] == "voided"
    assert await calls(pool, order) == [("authorize", "succeeded"), ("void", "succeeded")]
    assert (await sandbox_authorization(sandbox, order))["status"] == "voided"


async def test_a_card_captured_at_authorization_is_refunded_in_full(pool, payments, sandbox, sandbox_http) -> None:
    settings = SetPaymentSettings(shop_id=SHOP, issued_by="staff", capture_at_authorization=True)
    await StaffCommands(Gateways({"sandbox": SandboxGateway(sandbox_http)})).set_settings(settings, MessageContext(pool, settings.event_id, topics.PAYMENTS_COMMANDS, None))
    order = accepted()
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, cancelled(order), payments.on_order_cancelled)

    answer = (await published(pool))[-1]
    assert (answer["type"], answer["outcome"], answer["amount"]) == ("PaymentCancelled", "refunded", order.charges.total)
    row = await payment_row(pool, order)
    assert (row["status"], row["captured_amount"], row["refunded_amount"]) == ("refunded", order.charges.total, order.charges.total)
    authorization = await sandbox_authorization(sandbox, order)
    assert (authorization["captured"], authorization["refunded"]) == (order.charges.total, order.charges.total)


async def test_without_cancel_payment_nothing_is_published_but_neither_a_shipment_nor_staff_can_capture_it(pool, payments, sandbox, sandbox_http) -> None:
    order = accepted()
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, cancelled(order, cancel_payment=False), payments.on_order_cancelled)
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
    retry = RetryCapture(shop_id=SHOP, issued_by="staff", order_id=order.order_id, reason="ship anyway")
    with pytest.raises(CommandRefused) as refused:
        await StaffCommands(Gateways({"sandbox": SandboxGateway(sandbox_http)})).retry_capture(retry, MessageContext(pool, retry.event_id, topics.PAYMENTS_COMMANDS, None))

    assert [e["type"] for e in await published(pool)] == ["PaymentAuthorized"]
    assert refused.value.reasons == ["order is cancelled; a cancelled order is never captured"]
    assert await calls(pool, order) == [("authorize", "succeeded")]
    assert (await sandbox_authorization(sandbox, order))["status"] == "authorized"
    cancellation = await pool.fetchrow("SELECT * FROM cancellations WHERE order_id = $1", order.order_id)
    assert (cancellation["cancel_payment"], cancellation["outcome"]) == (False, "not_asked")
    await pool.execute("UPDATE payments SET authorized_at = now() - interval '8 days' WHERE order_id = $1", order.order_id)
    assert await run_periodic_checks(SimpleNamespace(pool=pool), datetime.now(timezone.utc)) == 0


async def test_a_void_the_gateway_refuses_is_a_cancellation_failure_and_the_order_stays_uncapturable(pool, payments, sandbox) -> None:
    order = accepted()
    await deliver(pool, order, payments.on_order_accepted)
    authorization = await sandbox_authorization(sandbox, order)
    # captured at the gateway behind ordermesh's back (e.g. by hand in the provider's dashboard)
    await sandbox[0].post(f"/v1/authorizations/{authorization['authorization_id']}/capture", json={"idempotency_key": "by-hand", "amount": 1})
    await deliver(pool, cancelled(order), payments.on_order_cancelled)
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)

    events = await published(pool)
    assert [e["type"] for e in events] == ["PaymentAuthorized", "PaymentCancellationFailed"]
    assert events[-1]["reason"] == "void refused by the gateway: already_captured"
    row = await payment_row(pool, order)
    assert row["status"] == "authorized" and row["cancelled_at"] is not None
    assert await calls(pool, order) == [("authorize", "succeeded"), ("void", "failed")]
    cancellation = await pool.fetchrow("SELECT outcome, failure_reason FROM cancellations WHERE order_id = $1", order.order_id)
    assert tuple(cancellation) == ("failed", "void refused by the gateway: already_captured")


async def test_a_prepaid_request_is_withdrawn_and_money_arriving_afterwards_is_an_over_payment_not_a_settlement(pool, payments) -> None:
    order = accepted("bank_transfer")
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, cancelled(order), payments.on_order_cancelled)
    reference = (await payment_row(pool, order))["reference"]
    report = ProviderPaymentReported(
        order_id=order.order_id, provider_event_id="evt_late", reference=reference, amount=order.charges.total,
        currency="JPY", paid_at=datetime.now(timezone.utc),
    )
    await deliver(pool, report, payments.on_provider_payment, topics.PAYMENTS_CALLBACKS)

    requested, answer, received = await published(pool)
    assert (requested["type"], answer["type"], answer["outcome"], answer["amount"]) == (
        "PaymentRequested", "PaymentCancelled", "request_cancelled", order.charges.total
    )
    assert (received["type"], received["balance"], received["received_total"]) == (
        "PaymentReceived", -order.charges.total, order.charges.total
    )
    row = await payment_row(pool, order)
    assert (row["status"], row["received_amount"]) == ("cancelled", order.charges.total)
    await pool.execute("UPDATE payments SET due_date = current_date - 30 WHERE order_id = $1", order.order_id)
    assert await run_periodic_checks(SimpleNamespace(pool=pool), datetime.now(timezone.utc)) == 0


async def test_a_prepaid_order_already_paid_owes_the_money_back_by_hand(pool, payments) -> None:
    order = accepted("convenience_store")
    await deliver(pool, order, payments.on_order_accepted)
    reference = (await payment_row(pool, order))["reference"]
    report = ProviderPaymentReported(
        order_id=order.order_id, provider_event_id="evt_paid", reference=reference, amount=order.charges.total,
        currency="JPY", paid_at=datetime.now(timezone.utc) - timedelta(hours=1),
    )
    await deliver(pool, report, payments.on_provider_payment, topics.PAYMENTS_CALLBACKS)
    await deliver(pool, cancelled(order), payments.on_order_cancelled)

    answer = (await published(pool))[-1]
    assert (answer["type"], answer["outcome"], answer["amount"], answer["refund_owed"]) == (
        "PaymentCancelled", "request_cancelled", 0, order.charges.total
    )
    assert (await payment_row(pool, order))["status"] == "cancelled"


async def test_a_cancellation_seen_before_the_acceptance_leaves_nothing_to_cancel_and_nothing_is_ever_authorized(pool, payments, sandbox) -> None:
    order = accepted()
    await deliver(pool, cancelled(order), payments.on_order_cancelled)
    await deliver(pool, order, payments.on_order_accepted)

    [answer] = await published(pool)
    assert (answer["type"], answer["outcome"], answer["amount"], answer["currency"]) == ("PaymentCancelled", "nothing_to_cancel", 0, None)
    row = await payment_row(pool, order)
    assert (row["status"], row["authorized_amount"]) == ("cancelled", None)
    assert await calls(pool, order) == []
    assert (await sandbox[0].get("/v1/authorizations", params={"order_id": str(order.order_id)})).json()["authorizations"] == []
