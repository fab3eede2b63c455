"""Cancelling a whole order, by staff, by a merge or by an overdue prepaid payment the shop cancels automatically."""

from ordermesh_contracts import Message, OrderCancelled, topics
from ordermesh_servicekit.consuming import UnitOfWork

from . import store, store_edits
from .domain.progress import Progress
from .domain.staff import cancel
from .domain.tasks import TASK_KINDS
from .settling import publish_progress


async def cancel_order(
    uow: UnitOfWork,
    order: store.StoredOrder,
    cause: Message,
    *,
    actor: str,
    reason: str,
    restore_stock: bool,
    cancel_payment: bool,
    notify_customer: bool,
) -> Progress:
    """Cancels the locked order with these choices (raises `staff.Refusal` when it can't be cancelled), closes its
    tasks and tells every service which reversals were chosen."""
    progress = cancel(order.state, restore_stock=restore_stock, cancel_payment=cancel_payment, notify_customer=notify_customer)
    current, _, _ = await store_edits.edit_basis(uow.conn, order.order_id)
    await store.save_state(uow.conn, order.order_id, progress.state)
    await store.add_history(uow.conn, order.order_id, [("cancelled", {"reason": reason})], actor=actor, cause_id=cause.event_id)
    # the stage change itself is automatic in an auto-mode order (as for every staff action but hold and release)
    mover = "auto" if progress.state.mode == "auto" else actor
    await publish_progress(uow, order.order_id, order.shop_id, order.external_order_no, cause, progress, actor=mover)
    await store.close_tasks_of_kind(uow.conn, order.order_id, list(TASK_KINDS), closed_by=actor)
    uow.publish(
        topics.ORDERS_EVENTS,
        OrderCancelled(
            order_id=order.order_id,
            shop_id=order.shop_id,
            external_order_no=order.external_order_no,
            customer_id=current.customer.customer_id,
            reason=reason,
            restore_stock=restore_stock,
            cancel_payment=cancel_payment,
            notify_customer=notify_customer,
            cancelled_by=actor,
            **cause.caused(),
        ),
    )
    return progress
