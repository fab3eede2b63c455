"""One function per message the points service consumes."""

from uuid import UUID

from ordermesh_contracts import OrderAccepted, PaymentCaptured, PointsAccrued, PointsConfirmed, topics
from ordermesh_servicekit.consuming import MessageContext, UnitOfWork

from . import store
from .domain.accrual import provisional_points


async def on_order_accepted(order: OrderAccepted, ctx: MessageContext) -> None:
    """Books provisional points; confirms them at once if payment was settled first."""
    points = provisional_points(order.merchandise_total, is_member=order.customer.member_since is not None)
    customer_id = order.customer.customer_id
    async with ctx.unit_of_work() as uow:
        existing = await store.lock_order_points(uow.conn, order.order_id)
        if existing is not None and existing["status"] in ("provisional", "confirmed"):
            return
        await store.save_accrual(uow.conn, order.order_id, order.shop_id, customer_id, points)
        await store.append_entry(
            uow.conn,
            shop_id=order.shop_id,
            customer_id=customer_id,
            order_id=order.order_id,
            kind="accrued",
            points=points,
            cause_id=order.event_id,
        )
        uow.publish(
            topics.POINTS_EVENTS,
            PointsAccrued(
                order_id=order.order_id, shop_id=order.shop_id, customer_id=customer_id, points=points, **order.caused()
            ),
        )
        if existing is not None and existing["confirm_requested"]:
            await _confirm(uow, order.order_id, order.shop_id, customer_id, points, existing["confirm_cause_id"], order)


async def on_payment_captured(captured: PaymentCaptured, ctx: MessageContext) -> None:
    """Confirms the order's provisional points once payment is settled."""
    async with ctx.unit_of_work() as uow:
        row = await store.lock_order_points(uow.conn, captured.order_id)
        if row is None or row["status"] == "awaiting_accrual":
            await store.request_confirmation(uow.conn, captured.order_id, captured.shop_id, captured.event_id)
            return
        if row["status"] == "confirmed":
            return
        await _confirm(uow, captured.order_id, row["shop_id"], row["customer_id"], row["points"], captured.event_id, captured)


async def _confirm(uow: UnitOfWork, order_id: UUID, shop_id: str, customer_id: str, points: int, cause_id: UUID, cause) -> None:
    await store.mark_confirmed(uow.conn, order_id)
    await store.append_entry(
        uow.conn,
        shop_id=shop_id,
        customer_id=customer_id,
        order_id=order_id,
        kind="confirmed",
        points=points,
        cause_id=cause_id,
    )
    uow.publish(
        topics.POINTS_EVENTS,
        PointsConfirmed(order_id=order_id, shop_id=shop_id, customer_id=customer_id, points=points, **cause.caused()),
    )
