"""One function per message the notify service consumes: render, record the intent, send, record the result."""

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import jinja2

from ordermesh_contracts import (
    MailFailed,
    MailKind,
    MailNotApplicable,
    MailSent,
    OrderAccepted,
    OrderMessage,
    ShipmentShipped,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext, PermanentError

from . import store
from .adapters.smtp import MailRefused, MailTransport, OutgoingMail
from .domain.mails import render_mail, tracking_url


def mail_id_for(order_id: UUID, kind: MailKind, cause_id: UUID) -> UUID:
    """The mail for one (order, kind, cause): stable, and the base of its Message-ID."""
    return uuid5(NAMESPACE_URL, f"ordermesh-mail:{order_id}/{kind.value}/{cause_id}")


class NotifyHandlers:
    """Handlers bound to the templates and the mail transport."""

    def __init__(self, templates: jinja2.Environment, transport: MailTransport, sender: str, mail_domain: str) -> None:
        self._templates = templates
        self._transport = transport
        self._sender = sender
        self._mail_domain = mail_domain

    async def on_order_accepted(self, order: OrderAccepted, ctx: MessageContext) -> None:
        """Keeps the order's contact and sends the order confirmation."""
        lines = [
            {"name": line.name, "quantity": line.quantity, "amount": line.unit_price * line.quantity - line.line_discount}
            for delivery in order.deliveries
            for line in delivery.lines
        ]
        summary = {"lines": lines, "total": order.charges.total}
        async with ctx.intent() as conn:
            await store.save_contact(
                conn,
                order_id=order.order_id,
                shop_id=order.shop_id,
                external_order_no=order.external_order_no,
                email=order.customer.email,
                name=order.customer.name,
                device=order.customer.device.value,
                summary=summary,
            )
        await self._send(order, MailKind.ORDER_CONFIRMATION, summary, ctx)

    async def on_shipment_shipped(self, shipped: ShipmentShipped, ctx: MessageContext) -> None:
        """Sends the shipped mail with carrier, tracking number and tracking link."""
        variables = {
            "carrier": shipped.carrier,
            "tracking_number": shipped.tracking_number,
            "tracking_url": tracking_url(shipped.carrier, shipped.tracking_number),
        }
        await self._send(shipped, MailKind.SHIPPED, variables, ctx)

    async def _send(self, cause: OrderMessage, kind: MailKind, variables: dict[str, Any], ctx: MessageContext) -> None:
        if await ctx.already_processed():
            return
        mail_id = mail_id_for(cause.order_id, kind, cause.event_id)
        async with ctx.intent() as conn:
            contact = await store.contact(conn, cause.order_id)
        if contact is None:
            raise PermanentError(f"no contact for order {cause.order_id}")
        envelope = {"order_id": cause.order_id, "shop_id": cause.shop_id, "mail_kind": kind, **cause.caused()}
        if not contact["email"]:
            async with ctx.unit_of_work() as uow:
                await store.log_unsendable(
                    uow.conn, mail_id=mail_id, order_id=cause.order_id, kind=kind.value, cause_id=cause.event_id,
                    status="not_applicable", reason="no e-mail address",
                )
                uow.publish(topics.NOTIFY_EVENTS, MailNotApplicable(**envelope, reason="no e-mail address"))
            return
        try:
            rendered = render_mail(
                self._templates,
                kind,
                {"customer_name": contact["name"], "external_order_no": contact["external_order_no"], **variables},
            )
        except jinja2.TemplateError as error:
            await self._fail(ctx, cause, kind, mail_id, envelope, f"template error: {error}")
            return
        message_id = f"<{mail_id}@{self._mail_domain}>"
        async with ctx.intent() as conn:
            await store.begin_mail(
                conn, mail_id=mail_id, order_id=cause.order_id, kind=kind.value, cause_id=cause.event_id,
                recipient=contact["email"], subject=rendered.subject, body=rendered.text,
            )
        try:
            await self._transport.send(OutgoingMail(message_id, self._sender, contact["email"], rendered.subject, rendered.text))
        except MailRefused as refused:
            await self._fail(ctx, cause, kind, mail_id, envelope, str(refused))
            return
        async with ctx.unit_of_work() as uow:
            await store.finish_mail(uow.conn, mail_id=mail_id, status="sent")
            uow.publish(topics.NOTIFY_EVENTS, MailSent(**envelope, message_id=message_id))

    async def _fail(self, ctx: MessageContext, cause: OrderMessage, kind: MailKind, mail_id: UUID, envelope: dict, reason: str) -> None:
        async with ctx.unit_of_work() as uow:
            await store.log_unsendable(
                uow.conn, mail_id=mail_id, order_id=cause.order_id, kind=kind.value, cause_id=cause.event_id,
                status="failed", reason=reason,
            )
            await store.finish_mail(uow.conn, mail_id=mail_id, status="failed", reason=reason)
            uow.publish(topics.NOTIFY_EVENTS, MailFailed(**envelope, reason=reason))
