"""Payments no gateway takes part in, through the handlers on a real PostgreSQL: an order paid on its sales platform
is recorded as captured at acceptance, cancelled and edited without any gateway call; an order with nothing to pay
is settled once, when it has shipped in full. Every gateway here fails the test if it is called."""

import contextlib
import json
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from ordermesh_contracts import OrderAccepted, OrderCancelled, OrderEdited, RefundPayment, ShipmentShipped, topics
from ordermesh_payments.adapters.gateway import Gateways
from ordermesh_payments.handlers import PaymentHandlers
from ordermesh_payments.handlers_deferred import DeferredPayments
from ordermesh_payments.handlers_edits import AmountChanges
from ordermesh_payments.staff import StaffCommands
from ordermesh_servicekit.commands import CommandRefused
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext

GOLDEN = Path(__file__).parents[3] / "contracts" / "tests" / "golden"
SHOP = "kyoto-tea"


class NoGateway:
    """A card gateway and credit provider that must never be called."""

    def __getattr__(self, name: str):
        async def called(**arguments):
            raise AssertionError(f"{name} was called at a gateway: {arguments}")

        return called


@pytest.fixture
def gateways() -> Gateways:
    return Gateways({"sandbox": NoGateway(), "stripe": NoGateway()})


@pytest.fixture
def payments(gateways) -> PaymentHandlers:
    return PaymentHandlers(gateways, DeferredPayments(NoGateway()))


@pytest.fixture
def amounts(gateways) -> AmountChanges:
    return AmountChanges(gateways, NoGateway())


async def deliver(pool, message, handler, topic: str = topics.ORDERS_EVENTS) -> None:
    with contextlib.suppress(DuplicateMessage):
        await handler(message, MessageContext(pool, message.event_id, topic, log=None))


def accepted(method: str = "platform", *, total: int | None = None, points_used: int = 0) -> OrderAccepted:
    raw = json.loads((GOLDEN / "OrderAccepted.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(uuid4()), shop_id=SHOP, channel="shopify", external_order_no="5678901234567890123")
    raw["payment"] = {"method": method, "card_token": None}
    if total is not None:
        raw["charges"] = {**raw["charges"], "total": total, "points_used": points_used}
    return OrderAccepted.model_validate(raw)


def edited(order: OrderAccepted, total: int, edit_no: int = 1) -> OrderEdited:
    raw = json.loads((GOLDEN / "OrderEdited.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(order.order_id), shop_id=order.shop_id, edit_no=edit_no)
    raw["payment"] = order.payment.model_dump(mode="json")
    raw["customer"] = order.customer.model_dump(mode="json")
    raw["previous_charges"] = order.charges.model_dump(mode="json")
    raw["charges"] = {**order.charges.model_dump(mode="json"), "total": total}
    return OrderEdited.model_validate(raw)


def cancelled(order: OrderAccepted, cancel_payment: bool = True) -> OrderCancelled:
    raw = json.loads((GOLDEN / "OrderCancelled.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(order.order_id), shop_id=order.shop_id, cancel_payment=cancel_payment)
    return OrderCancelled.model_validate(raw)


def shipped(order: OrderAccepted, all_shipped: bool = True) -> ShipmentShipped:
    return ShipmentShipped(
        order_id=order.order_id, shop_id=order.shop_id, shipment_id=uuid4(), delivery_index=0, carrier="yamato",
        tracking_number="4829-1734-6502", shipped_at=datetime.now(timezone.utc), lines=[], all_shipped=all_shipped,
    )


async def published(pool, order: OrderAccepted) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.PAYMENTS_EVENTS)
    return [body for body in (json.loads(bytes(row["payload"])) for row in rows) if body["order_id"] == str(order.order_id)]


async def ledger(pool, order: OrderAccepted) -> list[tuple]:
    rows = await pool.fetch(
        "SELECT operation, status, amount, reference FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at",
        order.order_id,
    )
    return [tuple(row) for row in rows]


async def payment_row(pool, order: OrderAccepted) -> asyncpg.Record:
    return await pool.fetchrow("SELECT * FROM payments WHERE order_id = $1", order.order_id)


async def test_an_order_paid_on_the_platform_is_recorded_as_captured_once_with_no_gateway_call(pool, payments) -> None:
    order = accepted()
    total = order.charges.total
    reference = "platform:shopify:5678901234567890123"
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, order, payments.on_order_accepted)
    again = order.model_copy(update={"event_id": uuid4()})
    await deliver(pool, again, payments.on_order_accepted)
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)

    row = await payment_row(pool, order)
    assert (row["method"], row["status"], row["captured_amount"], row["capture_id"], row["gateway"]) == (
        "platform", "captured", total, reference, None,
    )
    assert await ledger(pool, order) == [("capture", "succeeded", total, reference)]
    [event] = await published(pool, order)
    assert (event["type"], event["amount"], event["capture_id"], event["causation_id"]) == (
        "PaymentCaptured", total, reference, str(order.event_id),
    )


async def test_a_platform_order_cancelled_before_payments_saw_it_is_never_recorded_as_paid(pool, payments) -> None:
    order = accepted()
    await deliver(pool, cancelled(order), payments.on_order_cancelled)
    await deliver(pool, order, payments.on_order_accepted)
    row = await payment_row(pool, order)
    assert (row["status"], row["captured_amount"]) == ("cancelled", 0)
    assert await ledger(pool, order) == []
    assert [e["type"] for e in await published(pool, order)] == ["PaymentCancelled"]


async def test_cancelling_a_platform_payment_cancels_nothing_here_and_records_what_the_platform_took_as_owed(pool, payments) -> None:
    order = accepted()
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, cancelled(order), payments.on_order_cancelled)
    answer = (await published(pool, order))[-1]
    assert (answer["type"], answer["outcome"], answer["amount"], answer["refund_owed"]) == (
        "PaymentCancelled", "nothing_to_cancel", 0, order.charges.total,
    )
    cancellation = await pool.fetchrow("SELECT outcome, refund_owed FROM cancellations WHERE order_id = $1", order.order_id)
    assert tuple(cancellation) == ("nothing_to_cancel", order.charges.total)
    assert [op for op, *_ in await ledger(pool, order)] == ["capture"]


async def test_edits_of_a_platform_order_owe_a_refund_or_ask_for_the_balance_without_a_gateway(pool, payments, amounts) -> None:
    order = accepted()
    total = order.charges.total
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, edited(order, total - 1000, edit_no=1), amounts.on_order_edited)
    row = await payment_row(pool, order)
    assert (row["amount"], row["refund_owed"], row["balance_due"], row["refunded_amount"]) == (total - 1000, 1000, 0, 0)

    await deliver(pool, edited(order, total + 500, edit_no=2), amounts.on_order_edited)
    row = await payment_row(pool, order)
    assert (row["amount"], row["refund_owed"], row["balance_due"]) == (total + 500, 0, 500)

    changes = [e for e in await published(pool, order) if e["type"] == "PaymentAmountChanged"]
    assert [(c["edit_no"], c["outcome"], c["refunded"], c["balance_due"]) for c in changes] == [
        (1, "request_updated", 0, 0), (2, "balance_requested", 0, 500),
    ]
    owed = await pool.fetch("SELECT edit_no, refund_owed FROM amount_changes WHERE order_id = $1 ORDER BY edit_no", order.order_id)
    assert [tuple(r) for r in owed] == [(1, 1000), (2, 0)]
    assert [op for op, *_ in await ledger(pool, order)] == ["capture"]


async def test_staff_cannot_refund_a_platform_payment_through_ordermesh(pool, payments, gateways) -> None:
    order = accepted()
    await deliver(pool, order, payments.on_order_accepted)
    command = RefundPayment(shop_id=SHOP, issued_by="staff:sato", order_id=order.order_id, reason="damaged", amount=100)
    with pytest.raises(CommandRefused) as refused:
        await StaffCommands(gateways).refund(command, MessageContext(pool, command.event_id, topics.PAYMENTS_COMMANDS, None))
    assert "sales platform" in refused.value.reasons[0]
    assert (await payment_row(pool, order))["refunded_amount"] == 0


async def test_a_points_only_order_is_settled_for_nothing_once_when_it_has_shipped_in_full(pool, payments) -> None:
    order = accepted("points_only", total=0, points_used=7910)
    await deliver(pool, order, payments.on_order_accepted)
    assert (await payment_row(pool, order))["status"] == "not_applicable"
    await deliver(pool, shipped(order, all_shipped=False), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
    assert await published(pool, order) == [], "a partial shipment settles nothing"

    first = shipped(order)
    await deliver(pool, first, payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
    await deliver(pool, first, payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)

    row = await payment_row(pool, order)
    assert (row["status"], row["captured_amount"], row["capture_id"]) == ("captured", 0, "nothing-to-pay")
    assert await ledger(pool, order) == [("capture", "succeeded", 0, "nothing-to-pay")]
    [event] = await published(pool, order)
    assert (event["type"], event["amount"], event["capture_id"], event["causation_id"]) == (
        "PaymentCaptured", 0, "nothing-to-pay", str(first.event_id),
    )


@pytest.mark.parametrize("method", ["card", "cash_on_delivery"])
async def test_an_order_of_any_method_with_a_total_of_0_is_settled_for_nothing_when_shipped(pool, payments, method) -> None:
    order = accepted(method, total=0, points_used=7910)
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
    assert [(e["type"], e["amount"]) for e in await published(pool, order)] == [("PaymentCaptured", 0)]


async def test_a_cancelled_points_only_order_or_one_whose_total_an_edit_raised_is_not_settled_for_nothing(pool, payments, amounts) -> None:
    gone = accepted("points_only", total=0, points_used=7910)
    await deliver(pool, gone, payments.on_order_accepted)
    await deliver(pool, cancelled(gone, cancel_payment=False), payments.on_order_cancelled)
    await deliver(pool, shipped(gone), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
    assert await published(pool, gone) == []

    raised = accepted("cash_on_delivery", total=0, points_used=7910)
    await deliver(pool, raised, payments.on_order_accepted)
    await deliver(pool, edited(raised, 1200), amounts.on_order_edited)
    await deliver(pool, shipped(raised), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
    assert [e["type"] for e in await published(pool, raised)] == ["PaymentAmountChanged"]
    assert (await payment_row(pool, raised))["captured_amount"] == 0
