"""One function per event the notify service consumes: keep the order's contact, then mail once per cause.

A mail is claimed (its intent, one statement committed on its own), sent, and its outcome recorded with the cause's
inbox row, what the cause changes of the order, and the event announcing the mail, in one statement.
"""

from collections.abc import Callable, Mapping
from typing import Any

from ordermesh_contracts import (
    MailKind,
    OrderAccepted,
    OrderCancelled,
    OrderEdited,
    OrderMessage,
    OrderProgressed,
    OrderReturned,
    PaymentReceived,
    PaymentRequested,
    PointsConfirmed,
    ShipmentShipped,
    Stage,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext
from ordermesh_servicekit.outbox import OutgoingMessage

from . import store
from .domain.mails import tracking_url
from .domain.snapshot import order_changed_variables, order_summary
from .mailing import Mailer, UnknownOrder, contact_missing


class NotifyHandlers:
    """Handlers of the events that cause customer mails."""

    def __init__(self, mailer: Mailer) -> None:
        self._mailer = mailer

    async def on_order_accepted(self, order: OrderAccepted, ctx: MessageContext) -> None:
        """Keeps the order's contact (with the confirmation's claim) and sends the order confirmation."""
        contact = {
            "shop_id": order.shop_id,
            "external_order_no": order.external_order_no,
            "email": order.customer.email,
            "name": order.customer.name,
            "device": order.customer.device.value,
            "summary": order_summary(
                currency=order.currency, payment_method=order.payment.method.value, deliveries=order.deliveries,
                charges=order.charges,
            ),
            "mail_texts": order.mail_texts,
        }
        await self._mail(order, MailKind.ORDER_CONFIRMATION, {}, ctx, new_contact=contact)

    async def on_payment_requested(self, requested: PaymentRequested, ctx: MessageContext) -> None:
        """Sends the prepaid payment instructions: reference, amount, due date, where to pay, and whether an unpaid
        order is cancelled automatically (only then does the mail say so)."""
        variables = {
            "method": requested.method.value, "reference": requested.reference,
            "amount": requested.amount, "due_date": requested.due_date.isoformat(),
            "pay_to": requested.pay_to, "cancels_when_overdue": requested.cancels_when_overdue,
        }
        await self._mail(requested, MailKind.PAYMENT_INSTRUCTIONS, variables, ctx)

    async def on_payment_received(self, received: PaymentReceived, ctx: MessageContext) -> None:
        """Thanks the customer for a payment, naming any balance still due or over-paid."""
        variables = {"method": received.method.value, "amount": received.amount, "balance": received.balance}
        await self._mail(received, MailKind.PAYMENT_RECEIVED, variables, ctx)

    async def on_order_progressed(self, progressed: OrderProgressed, ctx: MessageContext) -> None:
        """Tells the customer the order is being prepared once it is ready to ship."""
        if progressed.to_stage == Stage.READY_TO_SHIP:
            await self._mail(progressed, MailKind.PREPARING_SHIPMENT, {}, ctx)

    async def on_shipment_shipped(self, shipped: ShipmentShipped, ctx: MessageContext) -> None:
        """Sends the shipped mail with carrier, tracking number and tracking link, and which delivery (recipient and
        address) it is for when the order has several."""
        variables = {
            "carrier": shipped.carrier,
            "tracking_number": shipped.tracking_number,
            "tracking_url": tracking_url(shipped.carrier, shipped.tracking_number),
            "delivery_index": shipped.delivery_index,
        }
        await self._mail(shipped, MailKind.SHIPPED, variables, ctx)

    async def on_points_confirmed(self, confirmed: PointsConfirmed, ctx: MessageContext) -> None:
        """Tells the customer their points are confirmed (only when there are any)."""
        if confirmed.points > 0:
            await self._mail(confirmed, MailKind.POINTS_CONFIRMED, {"points": confirmed.points}, ctx)

    async def on_order_cancelled(self, cancelled: OrderCancelled, ctx: MessageContext) -> None:
        """Sends the cancellation mail, with staff's reason, only when staff chose to tell the customer (seed 000)."""
        if not cancelled.notify_customer:
            await ctx.handled_in_one_statement()  # the inbox row records that staff chose no mail
            return
        await self._mail(cancelled, MailKind.ORDER_CANCELLED, {"reason": cancelled.reason}, ctx)

    async def on_order_edited(self, edited: OrderEdited, ctx: MessageContext) -> None:
        """Keeps the order's lines and totals as edited (later mails show them); mails the change, with the new lines,
        totals and any balance, only when staff chose to tell the customer (as for a cancellation)."""
        await self._keep_changed_order(edited, edited.changes, [], ctx)

    async def on_order_returned(self, returned: OrderReturned, ctx: MessageContext) -> None:
        """Keeps the order as the return left it; mails the change (what came back, the new total and the refund owed)
        with the order-changed mail only when staff chose to tell the customer."""
        came_back = [f"{line.name}: -{line.quantity}" for line in returned.lines]
        await self._keep_changed_order(returned, [], came_back, ctx)

    async def _keep_changed_order(
        self, changed: OrderEdited | OrderReturned, changes: list, described: list[str], ctx: MessageContext
    ) -> None:
        """Stores the order as an edit or a return left it, with the order-changed mail when the customer is to be
        told: its change lines name every sku the order ever had (`described`, when given, replaces them)."""
        summary = order_summary(
            currency=changed.currency, payment_method=changed.payment.method.value, deliveries=changed.deliveries,
            charges=changed.charges, edit_no=changed.edit_no,
        )
        kept = store.edit_kept(changed.order_id, summary)
        if not changed.notify_customer:
            await ctx.handled_in_one_statement((), *kept)
            return

        def variables(contact: Mapping[str, Any]) -> dict[str, Any]:
            names = {**contact["summary"].get("names", {}), **summary["names"]}
            changed_variables = order_changed_variables(
                summary, changes, names, previous_total=changed.previous_charges.total, balance=changed.balance
            )
            return {**changed_variables, "changes": described} if described else changed_variables

        await self._mail(changed, MailKind.ORDER_CHANGED, variables, ctx, keep=kept)

    async def _mail(
        self,
        cause: OrderMessage,
        kind: MailKind,
        variables: dict[str, Any] | Callable[[Mapping[str, Any]], dict[str, Any]],
        ctx: MessageContext,
        *,
        new_contact: dict[str, Any] | None = None,
        keep: store.Effect | None = None,
    ) -> None:
        """Claims the mail (keeping `new_contact` first), sends it, then records its outcome with the cause's inbox
        row, what `keep` changes and the announcing event, in one statement (a mail of a kind the shop turned off:
        the claim records it all). `variables` may be computed from the order's contact."""
        try:
            async with ctx.pool.acquire() as conn:
                claim = await self._mailer.claim(
                    conn, order_id=cause.order_id, kind=kind, cause_id=cause.event_id, seen_id=ctx.message_id,
                    new_contact=new_contact, cause=None if keep else cause, topic=ctx.topic,
                )  # a cause that changes the order records the change with the outcome, never in the claim
        except UnknownOrder:
            raise contact_missing(cause.order_id, cause.occurred_at) from None
        if claim is None or claim.settled:
            return  # the inbox holds the cause: its mail was recorded and announced
        if callable(variables):
            variables = variables(claim.setup.contact)
        attempt = await self._mailer.send(claim, variables)
        effects, effect_args = store.together(*(effect for effect in (keep, attempt.finished()) if effect is not None))
        announced = OutgoingMessage.of(topics.NOTIFY_EVENTS, attempt.outcome.event(cause))
        await ctx.handled_in_one_statement([announced], effects, effect_args)
