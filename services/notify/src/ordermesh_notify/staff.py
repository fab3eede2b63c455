"""Staff commands of the notify service (remail, bulk, preview, settings, templates, per-order text) and the mail-log read."""

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ordermesh_contracts import (
    ItemResult,
    MailKind,
    PreviewMail,
    ResendMail,
    SaveMailTemplate,
    SendBulkMail,
    SendMessageToCustomer,
    SetOrderMailText,
    SetShopMailSettings,
    topics,
)
from ordermesh_servicekit.commands import CommandRefused, accept
from ordermesh_servicekit.consuming import MessageContext
from ordermesh_servicekit.http_input import query_text, query_uuid

from . import store
from .domain.mails import SETTING_FIELDS, ShopMailSettings, mask_address, settings_after
from .domain.templates import MailTemplate, RenderedMail, TemplateProblem, sample_variables, variables_needed
from .mailing import Mailer, MailOutcome, UnknownOrder, settings_from

SERVICE = "notify"


class StaffCommands:
    """Handlers of `notify.commands.v1`."""

    def __init__(self, mailer: Mailer) -> None:
        self._mailer = mailer

    async def save_template(self, command: SaveMailTemplate, ctx: MessageContext) -> None:
        """Saves a shop's template once it renders against sample variables; refuses it with the reasons otherwise."""
        template = MailTemplate(command.subject, command.text, command.html, "shop")
        if problems := self._mailer.renderer.problems(template, command.mail_kind):
            raise CommandRefused(*problems)
        async with ctx.unit_of_work() as uow:
            await store.save_template(
                uow.conn, shop_id=command.shop_id, kind=command.mail_kind.value, device=command.device.value,
                subject=command.subject, text=command.text, html=command.html, updated_by=command.issued_by,
            )
            accept(uow, command, SERVICE, details={"mail_kind": command.mail_kind.value, "device": command.device.value})

    async def set_settings(self, command: SetShopMailSettings, ctx: MessageContext) -> None:
        """Sets the fields of the shop's mail settings the command carries; a field left out of the message keeps its
        value (for a new shop, the default). The reply's details hold the settings as they now stand."""
        given = {name: getattr(command, name) for name in SETTING_FIELDS if name in command.model_fields_set}
        async with ctx.unit_of_work() as uow:
            current = settings_from(await store.lock_shop_settings(uow.conn, command.shop_id))
            settings = settings_after(current, given)
            await store.save_shop_settings(
                uow.conn, shop_id=command.shop_id, language=settings.language, signature=settings.signature,
                encoding=settings.encoding, disabled_kinds=sorted(k.value for k in settings.disabled_kinds),
                updated_by=command.issued_by,
            )
            accept(uow, command, SERVICE, details=settings_json(settings))

    async def set_order_text(self, command: SetOrderMailText, ctx: MessageContext) -> None:
        """Sets the text inserted into the order's later mails."""
        async with ctx.unit_of_work() as uow:
            if not await store.set_inserted_text(uow.conn, command.order_id, command.shop_id, command.text or None):
                raise CommandRefused(f"order {command.order_id} of shop {command.shop_id} is unknown to notify")
            accept(uow, command, SERVICE)

    async def preview(self, command: PreviewMail, ctx: MessageContext) -> None:
        """Renders a mail for an order without sending; subject, text and HTML go back in the reply's details."""
        async with ctx.pool.acquire() as conn:
            try:
                setup = await self._mailer.setup(conn, command.order_id, command.mail_kind, device=command.device)
            except UnknownOrder:
                setup = None
            if setup is None or setup.contact["shop_id"] != command.shop_id:
                raise CommandRefused(f"order {command.order_id} of shop {command.shop_id} is unknown to notify")
            known = await store.last_variables(conn, command.order_id, command.mail_kind.value) or {}
        sample = {k: v for k, v in sample_variables(command.mail_kind).items() if k in variables_needed(command.mail_kind)}
        try:
            rendered = self._mailer.render(setup, command.mail_kind, {**sample, **known}, command.device)
        except TemplateProblem as problem:
            raise CommandRefused(str(problem)) from None
        async with ctx.unit_of_work() as uow:
            accept(uow, command, SERVICE, details={
                "subject": rendered.subject, "text": rendered.text, "html": rendered.html, "template": rendered.template,
                "sample_variables": sorted(set(sample) - set(known)),
            })

    async def send_message(self, command: SendMessageToCustomer, ctx: MessageContext) -> None:
        """Mails a free message from staff to the order's customer."""
        if await ctx.already_processed():
            return
        variables = {"message_subject": command.subject, "message": command.message}
        outcome = await self._deliver(ctx, command.order_id, command.shop_id, MailKind.MESSAGE_TO_CUSTOMER, command, variables)
        await self._answer(ctx, command, [outcome])

    async def resend(self, command: ResendMail, ctx: MessageContext) -> None:
        """Sends a logged mail again, with the same content, as a new mail caused by this command."""
        if await ctx.already_processed():
            return
        async with ctx.pool.acquire() as conn:
            original = await store.mail(conn, command.mail_id)
            if original is None or original["order_id"] != command.order_id:
                raise CommandRefused(f"mail {command.mail_id} of order {command.order_id} is not in the mail log")
            await _contact_of(conn, command.order_id, command.shop_id)
        if original["body"] is None:
            raise CommandRefused(f"mail {command.mail_id} has no content to resend (never rendered, or purged)")
        content = RenderedMail(original["subject"], original["body"], original["html"], original["template"] or "resend")
        kind = MailKind(original["kind"])
        outcome = await self._deliver(ctx, command.order_id, command.shop_id, kind, command, {}, content=content)
        await self._answer(ctx, command, [outcome], details={"resent_mail_id": str(command.mail_id)})

    async def send_bulk(self, command: SendBulkMail, ctx: MessageContext) -> None:
        """Sends one kind to many orders; each order's outcome is one item of the reply."""
        if await ctx.already_processed():
            return
        kind = command.mail_kind
        if kind == MailKind.MESSAGE_TO_CUSTOMER and not (command.subject and command.message):
            raise CommandRefused("a message_to_customer mail needs a subject and a message")
        outcomes: list[MailOutcome | ItemResult] = []
        for order_id in dict.fromkeys(command.order_ids):
            async with ctx.pool.acquire() as conn:
                known = await store.last_variables(conn, order_id, kind.value) or {}
            variables = {"message_subject": command.subject, "message": command.message} if kind == MailKind.MESSAGE_TO_CUSTOMER else known
            try:
                outcomes.append(await self._deliver(ctx, order_id, command.shop_id, kind, command, variables))
            except CommandRefused as refused:
                outcomes.append(ItemResult(item=str(order_id), ok=False, reason="; ".join(refused.reasons)))
        await self._answer(ctx, command, outcomes)

    async def _deliver(self, ctx, order_id, shop_id, kind, command, variables, content=None) -> MailOutcome:
        async with ctx.pool.acquire() as conn:
            await _contact_of(conn, order_id, shop_id)
        try:
            return await self._mailer.deliver(
                ctx.pool, order_id=order_id, kind=kind, cause_id=command.event_id, variables=variables,
                by_staff=True, content=content,
            )
        except UnknownOrder:
            raise CommandRefused(f"order {order_id} is unknown to notify") from None

    async def _answer(self, ctx, command, outcomes: list, details: dict[str, Any] | None = None) -> None:
        results = []
        async with ctx.unit_of_work() as uow:
            for outcome in outcomes:
                if isinstance(outcome, ItemResult):
                    results.append(outcome)
                    continue
                uow.publish(topics.NOTIFY_EVENTS, outcome.event(command))
                results.append(ItemResult(item=str(outcome.order_id), ok=outcome.status == "sent", reason=outcome.reason))
            mail_ids = {str(o.order_id): str(o.mail_id) for o in outcomes if isinstance(o, MailOutcome)}
            accept(uow, command, SERVICE, results=results, details={**(details or {}), "mail_ids": mail_ids})


async def _contact_of(conn, order_id, shop_id) -> dict[str, Any]:
    contact = await store.contact(conn, order_id)
    if contact is None or contact["shop_id"] != shop_id:
        raise CommandRefused(f"order {order_id} of shop {shop_id} is unknown to notify")
    return contact


def mail_log_endpoint(pool_provider):
    """GET /api/notify/mails?order_id=…: the order's mail log with masked recipients."""

    async def mails(request: Request) -> Response:
        order_id = query_uuid(request, "order_id")
        async with pool_provider().acquire() as conn:
            rows = await store.mails_of_order(conn, order_id)
        body = [
            {**{k: v for k, v in dict(row).items() if k != "recipient"}, "recipient": mask_address(row["recipient"])}
            for row in rows
        ]
        return Response(json.dumps(body, default=str), media_type="application/json")

    return mails


def settings_json(settings: ShopMailSettings) -> dict[str, Any]:
    """A shop's mail settings as staff see them."""
    return {
        "language": settings.language, "signature": settings.signature, "encoding": settings.encoding,
        "disabled_kinds": sorted(kind.value for kind in settings.disabled_kinds),
    }


def shop_settings_endpoint(pool_provider):
    """GET /api/notify/settings?shop_id=…: the shop's mail settings (the defaults when it set none)."""

    async def shop_settings(request: Request) -> Response:
        shop_id = query_text(request, "shop_id", required=True, max_length=64)
        async with pool_provider().acquire() as conn:
            row = await store.shop_settings(conn, shop_id)
        body = {"shop_id": shop_id, **settings_json(settings_from(row)), "customised": row is not None}
        if row is not None:
            body |= {"updated_by": row["updated_by"], "updated_at": row["updated_at"].isoformat()}
        return JSONResponse(body)

    return shop_settings
