"""Committing an edit of an order — by staff, by a split, or to reverse what the warehouse could not follow — as one
unit announced with one `OrderEdited`."""

from ordermesh_contracts import Message, OrderAccepted, OrderEdited, topics
from ordermesh_servicekit.consuming import UnitOfWork

from . import store, store_edits
from .domain.edits import EditPlan, balance_of, flags_after_edit
from .settling import publish_progress, recording, settle


async def commit_edit(
    uow: UnitOfWork,
    order: store.StoredOrder,
    current: OrderAccepted,
    paid: int,
    edit_no: int,
    plan: EditPlan,
    command: Message,
    *,
    actor: str | None = None,
    adjust_stock: bool,
    notify_customer: bool,
    reason: str,
    extra_flags: dict[str, str] | None = None,
) -> OrderEdited:
    """Saves the edited order and its diff, re-runs the rules, moves it if it can, and announces one `OrderEdited`.
    `command` is the staff command (or the event, for an automatic reversal) that caused it; `actor` defaults to its
    issuer."""
    edited = OrderEdited(
        order_id=order.order_id,
        shop_id=order.shop_id,
        edit_no=edit_no,
        external_order_no=order.external_order_no,
        customer=current.customer,
        currency=current.currency,
        payment=current.payment,
        changes=plan.changes,
        deliveries=plan.deliveries,
        previous_charges=current.charges,
        charges=plan.charges,
        merchandise_total=plan.merchandise_total,
        paid=paid,
        balance=balance_of(plan.charges.total, paid),
        adjust_stock=adjust_stock,
        notify_customer=notify_customer,
        reason=reason,
        edited_by=actor or command.issued_by,
        **command.caused(),
    )
    snapshot = current.model_copy(
        update={"deliveries": plan.deliveries, "charges": plan.charges, "merchandise_total": plan.merchandise_total}
    )
    await store_edits.save_edit(uow.conn, edited, snapshot, command.event_id, previous=current.deliveries)
    summary = {"edit_no": edit_no, "previous_total": current.charges.total, "total": plan.charges.total,
               "balance": edited.balance, "changes": [change.model_dump(mode="json") for change in plan.changes]}
    await store.add_history(uow.conn, order.order_id, [("edited", summary)], actor=edited.edited_by, cause_id=command.event_id)
    flags = flags_after_edit(
        current.charges, plan.charges, order.state.payment_method, notify_customer, balance=edited.balance
    ) | (extra_flags or {})
    order, progress = await settle(uow, order.order_id, recording(flags), cause_id=command.event_id)
    uow.publish(topics.ORDERS_EVENTS, edited)
    await publish_progress(uow, order.order_id, order.shop_id, order.external_order_no, edited, progress)
    return edited
