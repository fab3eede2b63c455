"""Payments settled without any gateway: an order paid on its sales platform (recorded as captured at acceptance)
and an order with nothing to pay (settled once it has shipped in full). Each is written to the ledger once."""

import asyncpg

from ordermesh_contracts import Message, OrderAccepted, PaymentCaptured, ShipmentShipped, topics
from ordermesh_servicekit.consuming import UnitOfWork
from ordermesh_servicekit.parking import DependencyMissing

from . import store
from .domain.payment import NOTHING_TO_PAY, idempotency_key, platform_reference, settles_with_nothing_to_pay


async def _record_capture(
    uow: UnitOfWork, payment: asyncpg.Record, *, amount: int, reference: str, note: str, cause: Message
) -> None:
    """Writes the capture to the ledger and the payment, and publishes PaymentCaptured (nothing if done before)."""
    order_id = payment["order_id"]
    key = idempotency_key(order_id, f"settle:{reference}")
    if not await store.record_settled_without_gateway(
        uow.conn, key=key, order_id=order_id, amount=amount, reference=reference, note=note
    ):
        return
    await store.set_captured(uow.conn, order_id, amount, reference)
    uow.publish(
        topics.PAYMENTS_EVENTS,
        PaymentCaptured(
            order_id=order_id, shop_id=payment["shop_id"], capture_id=reference, amount=amount,
            currency=payment["currency"], **cause.caused(),
        ),
    )


async def capture_on_platform(uow: UnitOfWork, order: OrderAccepted, payment: dict) -> None:
    """Records an order paid on its sales platform as captured for its total, with no gateway call: PaymentCaptured
    (capture_id = the platform reference). An order cancelled before it got here is only recorded as cancelled."""
    cancelled = await store.is_cancelled(uow.conn, order.order_id)
    await store.create_payment(uow.conn, **payment, status="cancelled" if cancelled else "captured", cancelled=cancelled)
    row = await store.lock_payment(uow.conn, order.order_id)
    if cancelled or row["cancelled_at"] is not None:
        return
    await _record_capture(
        uow, row, amount=order.charges.total, reference=platform_reference(order.channel.value, order.external_order_no),
        note=f"paid on {order.channel.value} before the order reached ordermesh: no gateway call; refunds go through "
        "the platform",
        cause=order,
    )


async def settle_nothing_to_pay(uow: UnitOfWork, shipped: ShipmentShipped) -> None:
    """Settles an order with nothing to pay (points only, or a total of 0) once it has shipped in full:
    PaymentCaptured for 0 (capture_id "nothing-to-pay"), once, with no gateway call. Other payments are left alone; a
    shipment of an order payments has not seen yet waits (parked) for its OrderAccepted."""
    if not shipped.all_shipped:
        return
    payment = await store.lock_payment(uow.conn, shipped.order_id)
    if payment is None:
        raise DependencyMissing(shipped.order_id, f"order {shipped.order_id} shipped before its OrderAccepted reached payments")
    if not settles_with_nothing_to_pay(payment["status"], payment["amount"], payment["cancelled_at"] is not None):
        return
    await _record_capture(
        uow, payment, amount=0, reference=NOTHING_TO_PAY,
        note="nothing to pay (points only or a total of 0): settled when the order shipped in full, no gateway call",
        cause=shipped,
    )
