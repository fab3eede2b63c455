"""Sending one mail once per cause: decide, render, record the intent, send over SMTP, record the result.

The crash window: the SMTP send and the recording of its result are two steps. A crash after the server
accepted the mail but before `finish_mail` committed leaves the log row in `sending`; the redelivered cause
then sends the mail once more (same Message-ID, so mail clients may fold the two). That is the only way a
cause mails twice. Every other replay finds the row `sent` or `failed` and sends nothing.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import asyncpg

from ordermesh_contracts import MailFailed, MailKind, MailNotApplicable, MailSent, Message
from ordermesh_servicekit.consuming import PermanentError, TransientError

from . import store
from .adapters.smtp import MailDeferred, MailRefused, MailTransport, OutgoingMail
from .domain.mails import (
    ShopMailSettings,
    address_problem,
    gives_up_on_deferral,
    mail_id_for,
    order_variables,
    should_wait_for_contact,
    why_not_applicable,
)
from .domain.templates import MailRenderer, MailTemplate, RenderedMail, TemplateProblem


class UnknownOrder(Exception):
    """Notify has no contact for the order (its OrderAccepted has not arrived, or never will)."""


@dataclass(frozen=True)
class MailOutcome:
    """How one mail ended: sent, failed or not applicable, with the reason or Message-ID."""

    order_id: UUID
    shop_id: str
    kind: MailKind
    mail_id: UUID
    status: str
    reason: str | None = None
    message_id: str | None = None

    def event(self, cause: Message) -> Message:
        """The event telling orders how the mail ended."""
        envelope = {"order_id": self.order_id, "shop_id": self.shop_id, "mail_kind": self.kind, **cause.caused()}
        if self.status == "sent":
            return MailSent(**envelope, message_id=self.message_id or "")
        if self.status == "not_applicable":
            return MailNotApplicable(**envelope, reason=self.reason or "")
        return MailFailed(**envelope, reason=self.reason or "")


def settings_from(row: Any) -> ShopMailSettings:
    """A shop's settings from its row, or the defaults."""
    if row is None:
        return ShopMailSettings()
    return ShopMailSettings(row["language"], row["signature"], row["encoding"], frozenset(MailKind(k) for k in row["disabled_kinds"]))


class Mailer:
    """Renders and sends mails through the transport; records every step in the mail log."""

    def __init__(
        self, renderer: MailRenderer, transport: MailTransport, *, sender: str, mail_domain: str, max_deferrals: int = 5
    ) -> None:
        self.renderer = renderer
        self._transport = transport
        self._sender = sender
        self._mail_domain = mail_domain
        self._max_deferrals = max_deferrals

    async def template_for(self, conn: asyncpg.Connection, shop_id: str, kind: MailKind, device: str, language: str) -> MailTemplate:
        """The shop's own template for the kind and device, else the default in the shop's language."""
        row = await store.shop_template(conn, shop_id, kind.value, device)
        if row is None:
            return self.renderer.default_template(language, kind)
        return MailTemplate(row["subject"], row["text_body"], row["html_body"], f"shop:{row['device']}")

    async def render_for_order(
        self, conn: asyncpg.Connection, contact: dict[str, Any], kind: MailKind, variables: dict[str, Any], device: str | None = None
    ) -> RenderedMail:
        """Renders the mail of `kind` for an order (raises `TemplateProblem`)."""
        settings = settings_from(await store.shop_settings(conn, contact["shop_id"]))
        device = device or contact["device"]
        template = await self.template_for(conn, contact["shop_id"], kind, device, settings.language)
        return self.renderer.render(
            template,
            {**order_variables(contact), "device": device, **variables},
            device=device,
            language=settings.language,
            signature=settings.signature,
            inserted_text=contact.get("inserted_text"),
        )

    async def deliver(
        self,
        pool: asyncpg.Pool,
        *,
        order_id: UUID,
        kind: MailKind,
        cause_id: UUID,
        variables: dict[str, Any],
        by_staff: bool = False,
        content: RenderedMail | None = None,
    ) -> MailOutcome:
        """Sends the mail of (order, kind, cause) unless the log says it already ended; returns how it ended.

        Raises `UnknownOrder` without a contact, `TransientError` while the server is unreachable (the row stays
        `sending` and the next try counts one more attempt).
        """
        mail_id = mail_id_for(order_id, kind, cause_id)
        async with pool.acquire() as conn:
            contact = await store.contact(conn, order_id)
            if contact is None:
                raise UnknownOrder(str(order_id))
            settings = settings_from(await store.shop_settings(conn, contact["shop_id"]))
            email = contact["email"]

            async def unsendable(status: str, reason: str) -> MailOutcome:
                row = await store.log_unsendable(
                    conn, mail_id=mail_id, order_id=order_id, kind=kind.value, cause_id=cause_id,
                    status=status, reason=reason, recipient=email,
                )
                return MailOutcome(order_id, contact["shop_id"], kind, mail_id, row["status"], row["reason"])

            if reason := why_not_applicable(kind, email, settings, by_staff=by_staff):
                return await unsendable("not_applicable", reason)
            if reason := address_problem(email):
                return await unsendable("failed", reason)
            if content is None:
                try:
                    content = await self.render_for_order(conn, contact, kind, variables)
                except TemplateProblem as problem:
                    return await unsendable("failed", str(problem))
            async with conn.transaction():
                begun = await store.begin_mail(
                    conn, mail_id=mail_id, order_id=order_id, kind=kind.value, cause_id=cause_id, recipient=email,
                    subject=content.subject, body=content.text, html=content.html, variables=variables,
                    template=content.template,
                )
        message_id = f"<{mail_id}@{self._mail_domain}>"
        outcome = MailOutcome(order_id, contact["shop_id"], kind, mail_id, "sent", message_id=message_id)
        if begun["previous"] in ("sent", "failed", "not_applicable"):
            return MailOutcome(order_id, contact["shop_id"], kind, mail_id, begun["previous"], begun["reason"], message_id)
        try:
            await self._transport.send(
                OutgoingMail(message_id, self._sender, email, content.subject, content.text, content.html, settings.encoding)
            )
        except MailRefused as refused:
            outcome = MailOutcome(order_id, contact["shop_id"], kind, mail_id, "failed", str(refused))
        except MailDeferred as deferred:
            if not gives_up_on_deferral(begun["attempts"], self._max_deferrals):
                raise TransientError(f"recipient deferred: {deferred}") from deferred
            reason = f"deferred {begun['attempts']} times, gave up: {deferred}"
            outcome = MailOutcome(order_id, contact["shop_id"], kind, mail_id, "failed", reason)
        async with pool.acquire() as conn:
            await store.finish_mail(conn, mail_id=mail_id, status=outcome.status, reason=outcome.reason)
        return outcome


def contact_missing(order_id: UUID, cause_occurred_at: datetime) -> Exception:
    """What to raise when a mail's cause arrives before (or without) the order's OrderAccepted."""
    if should_wait_for_contact(cause_occurred_at, datetime.now(timezone.utc)):
        return TransientError(f"order {order_id} not known to notify yet")
    return PermanentError(f"no contact for order {order_id}")
