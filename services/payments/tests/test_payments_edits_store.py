"""Order edits and deferred payment in the payments handlers and store, on a real PostgreSQL and the real sandbox
gateway over HTTP: the answer events, the ledger, the payment row and the gateway's own record."""

import contextlib
import json
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from ordermesh_contracts import (
    OrderAccepted,
    OrderCancelled,
    OrderEdited,
    RetryAmountChange,
    ShipmentShipped,
    topics,
)
from ordermesh_payments.adapters.credit import SandboxCreditProvider
from ordermesh_payments.adapters.gateway import Gateways, SandboxGateway
from ordermesh_payments.handlers import PaymentHandlers
from ordermesh_payments.handlers_deferred import DeferredPayments
from ordermesh_payments.handlers_edits import AmountChanges
from ordermesh_servicekit.commands import CommandRefused
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext

GOLDEN = Path(__file__).parents[3] / "contracts" / "tests" / "golden"
SHOP = "kyoto-tea"


@pytest.fixture
def deferred(sandbox_http) -> DeferredPayments:
    return DeferredPayments(SandboxCreditProvider(sandbox_http))


@pytest.fixture
def payments(deferred, sandbox_http) -> PaymentHandlers:
    return PaymentHandlers(Gateways({"sandbox": SandboxGateway(sandbox_http)}), deferred)


@pytest.fixture
def amounts(sandbox_http) -> AmountChanges:
    return AmountChanges(Gateways({"sandbox": SandboxGateway(sandbox_http)}), SandboxCreditProvider(sandbox_http))


async def deliver(pool, message, handler, topic: str = topics.ORDERS_EVENTS) -> None:
    with contextlib.suppress(DuplicateMessage):
        await handler(message, MessageContext(pool, message.event_id, topic, log=None))


def accepted(method: str = "card", customer_id: str = "C-000981") -> OrderAccepted:
    raw = json.loads((GOLDEN / "OrderAccepted.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(uuid4()), shop_id=SHOP)
    raw["payment"] = {"method": method, "card_token": "tok_visa" if method == "card" else None}
    raw["customer"]["customer_id"] = customer_id
    return OrderAccepted.model_validate(raw)


def edited(order: OrderAccepted, total: int, edit_no: int = 1) -> OrderEdited:
    raw = json.loads((GOLDEN / "OrderEdited.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(order.order_id), shop_id=SHOP, edit_no=edit_no)
    raw["payment"] = order.payment.model_dump(mode="json")
    raw["customer"] = order.customer.model_dump(mode="json")
    raw["previous_charges"] = order.charges.model_dump(mode="json")
    raw["charges"] = {**order.charges.model_dump(mode="json"), "total": total}
    return OrderEdited.model_validate(raw)


def shipped(order: OrderAccepted) -> ShipmentShipped:
    return ShipmentShipped(
        order_id=order.order_id, shop_id=SHOP, shipment_id=uuid4(), delivery_index=0, carrier="yamato",
        tracking_number="4829-1734-6502", shipped_at=datetime.now(timezone.utc), lines=[], all_shipped=True,
    )


def retry(order: OrderAccepted) -> RetryAmountChange:
    return RetryAmountChange(shop_id=SHOP, issued_by="staff:sato", order_id=order.order_id, reason="customer called")


async def published(pool, order: OrderAccepted, topic: str = topics.PAYMENTS_EVENTS) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topic)
    bodies = [json.loads(bytes(row["payload"])) for row in rows]
    return [b for b in bodies if b.get("order_id") == str(order.order_id) or topic == topics.OPS_REPLIES]


async def ledger(pool, order: OrderAccepted) -> list[tuple[str, str, int]]:
    rows = await pool.fetch(
        "SELECT operation, status, amount FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at", order.order_id
    )
    return [(row["operation"], row["status"], row["amount"]) for row in rows]


async def test_an_authorized_card_edited_up_is_reauthorized_and_the_old_authorization_voided_once(pool, payments, amounts, sandbox) -> None:
    order = accepted()
    total = order.charges.total
    await deliver(pool, order, payments.on_order_accepted)
    edit = edited(order, total + 2_160)
    await deliver(pool, edit, amounts.on_order_edited)
    await deliver(pool, edit, amounts.on_order_edited)

    answers = [e for e in await published(pool, order) if e["type"].startswith("PaymentAmount")]
    assert [(a["type"], a["outcome"], a["previous_amount"], a["amount"], a["edit_no"]) for a in answers] == [
        ("PaymentAmountChanged", "reauthorized", total, total + 2_160, 1)
    ]
    assert await ledger(pool, order) == [
        ("authorize", "succeeded", total), ("reauthorize", "succeeded", total + 2_160), ("void", "succeeded", total)
    ]
    at_gateway = (await sandbox.get("/v1/authorizations", params={"order_id": str(order.order_id)})).json()["authorizations"]
    assert sorted((a["amount"], a["status"]) for a in at_gateway) == [(total, "voided"), (total + 2_160, "authorized")]
    payment = await pool.fetchrow("SELECT * FROM payments WHERE order_id = $1", order.order_id)
    assert (payment["amount"], payment["authorized_amount"], payment["status"], payment["edit_no"]) == (
        total + 2_160, total + 2_160, "authorized", 1
    )

    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
    [captured] = [e for e in await published(pool, order) if e["type"] == "PaymentCaptured"]
    assert captured["amount"] == total + 2_160


async def test_a_card_edited_down_captures_only_the_new_amount_at_shipment(pool, payments, amounts) -> None:
    order = accepted()
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, edited(order, 5_000), amounts.on_order_edited)
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)

    events = await published(pool, order)
    [changed] = [e for e in events if e["type"] == "PaymentAmountChanged"]
    assert (changed["outcome"], changed["amount"]) == ("authorization_reduced", 5_000)
    [captured] = [e for e in events if e["type"] == "PaymentCaptured"]
    assert captured["amount"] == 5_000


async def test_a_refused_reauthorization_keeps_the_old_one_and_a_retry_is_answered(pool, payments, amounts, sandbox) -> None:
    order = accepted()
    total = order.charges.total
    await deliver(pool, order, payments.on_order_accepted)
    with pytest.raises(CommandRefused, match="no failed amount change"):
        await amounts.retry(retry(order), MessageContext(pool, uuid4(), topics.PAYMENTS_COMMANDS, None))

    await deliver(pool, edited(order, 20_402), amounts.on_order_edited)
    [failed] = [e for e in await published(pool, order) if e["type"].startswith("PaymentAmount")]
    assert (failed["type"], failed["requested_amount"], failed["reason"]) == (
        "PaymentAmountChangeFailed", 20_402, "re-authorization refused by the gateway: amount_declined"
    )
    payment = await pool.fetchrow("SELECT * FROM payments WHERE order_id = $1", order.order_id)
    assert (payment["amount"], payment["authorized_amount"], payment["status"]) == (total, total, "authorized")
    assert payment["amount_change_failure"] == "re-authorization refused by the gateway: amount_declined"

    command = retry(order)
    await deliver(pool, command, amounts.retry, topics.PAYMENTS_COMMANDS)
    [reply] = await published(pool, order, topics.OPS_REPLIES)
    assert (reply["type"], reply["results"][0]["ok"]) == ("CommandAccepted", False)
    answers = [e["type"] for e in await published(pool, order) if e["type"].startswith("PaymentAmount")]
    assert answers == ["PaymentAmountChangeFailed", "PaymentAmountChangeFailed"]


async def test_a_captured_card_edited_down_is_refunded_the_difference_and_up_asks_for_the_balance(pool, payments, amounts, sandbox) -> None:
    order = accepted()
    total = order.charges.total
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
    await deliver(pool, edited(order, total - 1_000), amounts.on_order_edited)
    await deliver(pool, edited(order, total + 500, edit_no=2), amounts.on_order_edited)
    await deliver(pool, edited(order, total - 3_000, edit_no=1), amounts.on_order_edited)

    answers = [e for e in await published(pool, order) if e["type"] == "PaymentAmountChanged"]
    assert [(a["outcome"], a["refunded"], a["balance_due"]) for a in answers] == [
        ("refunded", 1_000, 0), ("balance_requested", 0, 1_500)
    ]
    [at_gateway] = (await sandbox.get("/v1/authorizations", params={"order_id": str(order.order_id)})).json()["authorizations"]
    assert (at_gateway["captured"], at_gateway["refunded"]) == (total, 1_000)
    payment = await pool.fetchrow("SELECT * FROM payments WHERE order_id = $1", order.order_id)
    assert (payment["refunded_amount"], payment["balance_due"], payment["edit_no"]) == (1_000, 1_500, 2)


async def test_an_unpaid_prepaid_request_is_reissued_for_the_new_total_with_the_same_reference(pool, payments, amounts) -> None:
    order = accepted("bank_transfer")
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, edited(order, 7_000), amounts.on_order_edited)

    events = await published(pool, order)
    assert [e["type"] for e in events] == ["PaymentRequested", "PaymentAmountChanged", "PaymentRequested"]
    first, changed, second = events
    assert (changed["outcome"], changed["amount"]) == ("request_updated", 7_000)
    assert (second["reference"], second["amount"], second["due_date"]) == (first["reference"], 7_000, first["due_date"])


async def test_an_edit_of_a_cancelled_order_changes_nothing(pool, payments, amounts) -> None:
    order = accepted()
    await deliver(pool, order, payments.on_order_accepted)
    cancel = OrderCancelled(
        order_id=order.order_id, shop_id=SHOP, external_order_no=order.external_order_no, customer_id="C-000981",
        reason="customer asked", restore_stock=True, cancel_payment=True, notify_customer=False, cancelled_by="staff:sato",
    )
    await deliver(pool, cancel, payments.on_order_cancelled)
    await deliver(pool, edited(order, 20_000), amounts.on_order_edited)

    assert [e["type"] for e in await published(pool, order)] == ["PaymentAuthorized", "PaymentCancelled"]
    assert await pool.fetchval("SELECT count(*) FROM amount_changes") == 0


async def test_a_deferred_order_is_credit_checked_and_the_shipment_report_captures_it(pool, payments, sandbox) -> None:
    order = accepted("deferred")
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)

    approved, captured = await published(pool, order)
    assert (approved["type"], approved["amount"]) == ("CreditCheckApproved", order.charges.total)
    [check] = (await sandbox.get("/v1/credit-checks", params={"order_id": str(order.order_id)})).json()["credit_checks"]
    assert (captured["type"], captured["capture_id"], captured["amount"]) == (
        "PaymentCaptured", check["capture_id"], order.charges.total
    )
    assert (check["status"], check["carrier"], check["tracking_number"]) == ("captured", "yamato", "4829-1734-6502")
    assert await ledger(pool, order) == [
        ("credit_check", "succeeded", order.charges.total), ("capture", "succeeded", order.charges.total)
    ]


async def test_a_pending_credit_check_is_decided_by_polling_once_and_a_rejection_is_published(pool, payments, deferred) -> None:
    approve = accepted("deferred", customer_id="credit-pending-1")
    reject = accepted("deferred", customer_id="credit-pending-reject-1")
    at_once = accepted("deferred", customer_id="credit-reject-1")
    for order in (approve, reject, at_once):
        await deliver(pool, order, payments.on_order_accepted)

    assert await deferred.poll_pending(pool) == 2
    assert await deferred.poll_pending(pool) == 0
    assert [e["type"] for e in await published(pool, approve)] == ["CreditCheckPending", "CreditCheckApproved"]
    assert [e["type"] for e in await published(pool, reject)] == ["CreditCheckPending", "CreditCheckRejected"]
    [rejected] = await published(pool, at_once)
    assert (rejected["type"], rejected["reason"]) == ("CreditCheckRejected", "credit_limit_exceeded")
    statuses = await pool.fetch("SELECT order_id, status FROM payments ORDER BY status")
    assert sorted(row["status"] for row in statuses) == ["credit_approved", "credit_rejected", "credit_rejected"]


async def test_a_deferred_payment_edited_is_lowered_at_the_provider_or_rechecked_and_cancel_cancels_it(
    pool, payments, amounts, sandbox
) -> None:
    order = accepted("deferred")
    total = order.charges.total
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, edited(order, total - 1_000), amounts.on_order_edited)
    await deliver(pool, edited(order, total + 5_000, edit_no=2), amounts.on_order_edited)
    await deliver(pool, edited(order, 30_403, edit_no=3), amounts.on_order_edited)

    events = [(e["type"], e.get("outcome"), e.get("amount")) for e in await published(pool, order)]
    assert events == [
        ("CreditCheckApproved", None, total),
        ("PaymentAmountChanged", "credit_amount_updated", total - 1_000),
        ("CreditCheckApproved", None, total + 5_000),
        ("PaymentAmountChanged", "credit_rechecked", total + 5_000),
        ("CreditCheckRejected", None, None),
        ("PaymentAmountChangeFailed", None, None),
    ]
    payment = await pool.fetchrow("SELECT * FROM payments WHERE order_id = $1", order.order_id)
    assert (payment["amount"], payment["status"]) == (total + 5_000, "credit_approved")

    cancel = OrderCancelled(
        order_id=order.order_id, shop_id=SHOP, external_order_no=order.external_order_no, customer_id="C-000981",
        reason="customer asked", restore_stock=True, cancel_payment=True, notify_customer=False, cancelled_by="staff:sato",
    )
    await deliver(pool, cancel, payments.on_order_cancelled)
    [answer] = [e for e in await published(pool, order) if e["type"] == "PaymentCancelled"]
    assert (answer["outcome"], answer["amount"]) == ("voided", total + 5_000)
    checks = (await sandbox.get("/v1/credit-checks", params={"order_id": str(order.order_id)})).json()["credit_checks"]
    current = next(c for c in checks if c["check_id"] == payment["credit_check_id"])
    assert current["status"] == "cancelled"
