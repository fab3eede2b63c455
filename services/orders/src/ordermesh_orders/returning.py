"""Goods returned after shipping, booked by staff on a shipped or completed order and announced with one
`OrderReturned` that payments, points, shipping and notify each follow."""

from ordermesh_contracts import OrderReturned, ReturnItems, topics
from ordermesh_servicekit.commands import CommandRefused, accept
from ordermesh_servicekit.consuming import MessageContext

from . import store, store_edits, store_returns
from .domain import staff
from .domain.edits import balance_of, flags_after_edit
from .domain.returns import plan_return, return_refusals
from .domain.tasks import tasks_opened_by
from .handlers import open_tasks
from .order_changes import lock_owned_order
from .settling import publish_progress, recording, settle

SERVICE = "orders"


async def on_return_items(command: ReturnItems, ctx: MessageContext) -> None:
    """Books the returned units (negative lines beside their lines), lowers the total by what they are worth, flags
    the order as having returns and announces `OrderReturned`; refused with every reason, changing nothing."""
    async with ctx.unit_of_work() as uow:
        order = await lock_owned_order(uow, command, command.order_id)
        current, paid, edit_count = await store_edits.edit_basis(uow.conn, order.order_id)
        shipped = await store_edits.shipped_units(uow.conn, order.order_id)
        if reasons := return_refusals(order.state.stage, shipped):
            raise CommandRefused(*reasons)
        if order.state.flags.get("capture") == "in_progress":
            raise CommandRefused("a capture is in progress: book the return once it is done")
        returned, returns = await store_returns.returned_units(uow.conn, order.order_id)
        try:
            plan = plan_return(current.deliveries, current.charges, command, shipped, returned)
        except staff.Refusal as refusal:
            raise CommandRefused(*refusal.reasons) from None
        event = OrderReturned(
            order_id=order.order_id, shop_id=order.shop_id, edit_no=edit_count + 1, return_no=returns + 1,
            external_order_no=order.external_order_no, customer=current.customer, currency=current.currency,
            payment=current.payment, lines=plan.lines, amount=plan.amount, deliveries=plan.deliveries,
            previous_charges=current.charges, charges=plan.charges, merchandise_total=plan.merchandise_total, paid=paid,
            balance=balance_of(plan.charges.total, paid), restock=command.restock, notify_customer=command.notify_customer,
            reason=command.reason, returned_by=command.issued_by, **command.caused(),
        )
        snapshot = current.model_copy(
            update={"deliveries": plan.deliveries, "charges": plan.charges, "merchandise_total": plan.merchandise_total}
        )
        await store_returns.save_return(uow.conn, event, snapshot, command.event_id)
        summary = {
            "return_no": event.return_no, "amount": plan.amount, "previous_total": current.charges.total,
            "total": plan.charges.total, "balance": event.balance, "restock": command.restock,
            "lines": [line.model_dump(mode="json") for line in plan.lines],
        }
        await store.add_history(uow.conn, order.order_id, [("returned", summary)], actor=command.issued_by, cause_id=command.event_id)
        flags = {"returns": "returned"} | flags_after_edit(
            current.charges, plan.charges, order.state.payment_method, command.notify_customer, balance=event.balance
        )
        await open_tasks(uow, order.order_id, tasks_opened_by(flags), actor=command.issued_by, cause_id=command.event_id)
        order, progress = await settle(uow, order.order_id, recording(flags), cause_id=command.event_id)
        uow.publish(topics.ORDERS_EVENTS, event)
        await publish_progress(uow, order.order_id, order.shop_id, order.external_order_no, event, progress)
        accept(uow, command, SERVICE, details={
            "return_no": event.return_no, "amount": plan.amount, "previous_total": current.charges.total,
            "total": plan.charges.total, "balance": event.balance,
        })
