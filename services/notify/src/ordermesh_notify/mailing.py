"""Sending one mail once per cause: claim it (the intent), decide and render, send over SMTP, record the outcome.

Every mail has a Message-ID derived from its cause (`<mail_id@domain>`), so a receiver or relay can recognise a
second copy. Before deciding, a replica claims the mail in the log (owner and lease, in the one statement that also
loads what the mail needs): another replica that finds it `sending` under a live claim waits (a transient failure,
retried) instead of sending it too, so a rebalance or a graceful stop never sends a mail twice. The SMTP exchange is
bounded well within the lease. The outcome (with what was sent) is recorded once, in the cause's unit of work.

The crash window: the SMTP send and the recording of its result are two steps. A replica killed after the server
accepted the mail but before its result committed (with the cause's inbox row and the MailSent event, in one
transaction) leaves the row `sending`; once its claim has expired, the redelivered cause sends the mail once more,
with the same Message-ID. No sender can close that window without an idempotent receiver. Every other replay finds
the row `sent` or `failed` and sends nothing. A replica that dies between a claim and its outcome holds the mail
until the claim expires, whether the mail was to go out or not.
"""

import asyncio
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal
from uuid import UUID, uuid4

import asyncpg

from ordermesh_contracts import MailFailed, MailKind, MailNotApplicable, MailSent, Message, OrderMessage, topics
from ordermesh_servicekit.consuming import PermanentError, TransientError
from ordermesh_servicekit.outbox import OutgoingMessage
from ordermesh_servicekit.parking import DependencyMissing

from . import store
from .adapters.smtp import MailDeferred, MailRefused, MailTransport, OutgoingMail
from .domain.mails import (
    DEFAULT_DISABLED_KINDS,
    TURNED_OFF,
    ShopMailSettings,
    address_problem,
    gives_up_on_deferral,
    mail_id_for,
    order_variables,
    should_wait_for_contact,
    why_not_applicable,
    with_names,
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
    """A shop's settings from its row (or the settings columns of a `mail_setup` row), or the defaults."""
    if row is None or row["language"] is None:
        return ShopMailSettings()
    return ShopMailSettings(row["language"], row["signature"], row["encoding"], frozenset(MailKind(k) for k in row["disabled_kinds"]))


@dataclass(frozen=True)
class MailSetup:
    """What rendering and deciding one mail needs: the order's contact, the shop's settings and own template (if any),
    and whether the cause's message was handled already."""

    contact: dict[str, Any]
    settings: ShopMailSettings
    shop_template: MailTemplate | None
    seen: bool = False


@dataclass(frozen=True)
class MailClaim:
    """A mail of (order, kind, cause) as its claim found it: what it needs, and either this replica's claim to send it
    (`claimed`, with the claims so far in `attempts`) or where another left it (`previous`, `reason`, `holder`)."""

    mail_id: UUID
    kind: MailKind
    setup: MailSetup
    claimed: bool
    attempts: int
    previous: str | None
    reason: str | None
    holder: str | None
    settled: bool = False
    """The claim logged the mail not applicable (its kind turned off) with the cause's inbox row and event: done."""


@dataclass(frozen=True)
class MailAttempt:
    """A mail decided or sent whose outcome is not yet recorded: `finished` with the cause's inbox row, or `record`
    on its own."""

    outcome: MailOutcome
    step: Literal["unsent", "sent", "known"]  # decided not to send / went to the server / the log has it already
    content: RenderedMail | None = None
    variables: dict[str, Any] | None = None

    def finished(self) -> store.Effect | None:
        """The outcome in the mail log as an effect of the cause's unit of work (None when the log has it already)."""
        end = self._end()
        return store.mail_finished(end) if end is not None else None

    async def record(self, conn: asyncpg.Connection) -> MailOutcome:
        """Records the outcome in the mail log on its own (one statement; nothing when the log has it already)."""
        end = self._end()
        if end is not None:
            await store.finish_mail(conn, end)
        return self.outcome

    def _end(self) -> store.MailEnd | None:
        outcome, content = self.outcome, self.content
        if self.step == "unsent":
            return store.MailEnd(outcome.mail_id, outcome.status, sent=False, reason=outcome.reason)
        if self.step == "sent" and content is not None:
            return store.MailEnd(
                outcome.mail_id, outcome.status, sent=True, reason=outcome.reason, subject=content.subject,
                body=content.text, html=content.html, variables=self.variables, template=content.template,
            )
        return None


class Mailer:
    """Renders and sends mails through the transport; records every step in the mail log."""

    def __init__(
        self,
        renderer: MailRenderer,
        transport: MailTransport,
        *,
        sender: str,
        mail_domain: str,
        max_deferrals: int = 5,
        owner: str | None = None,
        claim_seconds: float = 30,
    ) -> None:
        """`owner` names this process in mail claims (default: host, pid and a random part, new at every start);
        a claim lasts `claim_seconds`, and one SMTP exchange is cut off after half of it."""
        self.renderer = renderer
        self._transport = transport
        self._sender = sender
        self._mail_domain = mail_domain
        self._max_deferrals = max_deferrals
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        self._claim_seconds = claim_seconds

    async def setup(
        self, conn: asyncpg.Connection, order_id: UUID, kind: MailKind, *, device: str | None = None, seen_id: UUID | None = None
    ) -> MailSetup:
        """Loads contact, shop settings and the shop's template in one query; raises `UnknownOrder` without a contact."""
        row = await store.mail_setup(conn, order_id, kind.value, device=device, seen_id=seen_id)
        if row is None:
            raise UnknownOrder(str(order_id))
        return self._setup_of(row)

    @staticmethod
    def _setup_of(row: dict[str, Any]) -> MailSetup:
        template = None
        if row["template_subject"] is not None:
            template = MailTemplate(row["template_subject"], row["template_text"], row["template_html"], f"shop:{row['template_device']}")
        return MailSetup(row, settings_from(row), template, row["seen"])

    def render(self, setup: MailSetup, kind: MailKind, variables: dict[str, Any], device: str | None = None) -> RenderedMail:
        """Renders the mail of `kind` for an order: the shop's template, else the default in the shop's language
        (raises `TemplateProblem`)."""
        contact, settings = setup.contact, setup.settings
        device = device or contact["device"]
        template = setup.shop_template or self.renderer.default_template(settings.language, kind)
        return self.renderer.render(
            template,
            with_names({**order_variables(contact), "device": device, **variables}, settings.language),
            device=device,
            language=settings.language,
            signature=settings.signature,
            inserted_text=inserted_text(contact, kind),
        )

    async def claim(
        self,
        conn: asyncpg.Connection,
        *,
        order_id: UUID,
        kind: MailKind,
        cause_id: UUID,
        seen_id: UUID | None = None,
        new_contact: dict[str, Any] | None = None,
        cause: OrderMessage | None = None,
        topic: str = "",
    ) -> MailClaim | None:
        """Claims the mail of (order, kind, cause) and loads what it needs, in one statement committed on its own (the
        intent before the SMTP exchange), keeping `new_contact` first when the cause brings the order's contact.

        Given the `cause` itself (the message `seen_id` on `topic`), a mail of a kind off by default that the shop
        left off is settled by that statement (`settled`): logged not applicable, with the cause's inbox row and the
        MailNotApplicable event, as `send` and the cause's unit of work would have done. (Only those kinds: a claim
        that may settle wakes the outbox relay even when it does not; any other kind the shop turned off takes the
        outcome's statement as well.)

        None if the inbox holds `seen_id`; raises `UnknownOrder` without a contact.
        """
        mail_id = mail_id_for(order_id, kind, cause_id)
        turned_off = None
        if cause is not None and seen_id is not None and kind in DEFAULT_DISABLED_KINDS:
            not_applicable = MailOutcome(order_id, cause.shop_id, kind, mail_id, "not_applicable", TURNED_OFF)
            turned_off = store.TurnedOff(
                [k.value for k in DEFAULT_DISABLED_KINDS], TURNED_OFF, cause.shop_id, seen_id, topic,
                OutgoingMessage.of(topics.NOTIFY_EVENTS, not_applicable.event(cause)),
            )
        row = await store.claim_mail(
            conn, mail_id=mail_id, order_id=order_id, kind=kind.value, cause_id=cause_id, owner=self.owner,
            claim_seconds=self._claim_seconds, seen_id=seen_id, new_contact=new_contact, turned_off=turned_off,
        )
        if row is None:
            raise UnknownOrder(str(order_id))
        if row["seen"]:
            return None
        return MailClaim(
            mail_id, kind, self._setup_of(row), row["claimed"], row["attempts"] or 0, row["previous"], row["reason"],
            row["holder"], row["settled"],
        )

    async def send(
        self, claim: MailClaim, variables: dict[str, Any], *, by_staff: bool = False, content: RenderedMail | None = None
    ) -> MailAttempt:
        """Decides the claimed mail and sends it when it applies; the outcome is left for the caller to record with
        the message's own transaction. A mail the log shows ended already is announced as it ended.

        Raises `TransientError` while another replica's claim is live, and while the server is unreachable (the row
        stays `sending`; the next claim counts one more attempt).
        """
        setup, kind, mail_id = claim.setup, claim.kind, claim.mail_id
        order_id, shop_id, email = setup.contact["order_id"], setup.contact["shop_id"], setup.contact["email"]
        message_id = f"<{mail_id}@{self._mail_domain}>"
        if not claim.claimed:
            if claim.previous in ("sent", "failed", "not_applicable"):
                known = MailOutcome(order_id, shop_id, kind, mail_id, claim.previous, claim.reason, message_id)
                return MailAttempt(known, "known")
            raise TransientError(f"mail {mail_id} is being sent by {claim.holder or 'another replica'}; waiting for it")

        def unsent(status: str, reason: str) -> MailAttempt:
            return MailAttempt(MailOutcome(order_id, shop_id, kind, mail_id, status, reason), "unsent")

        if reason := why_not_applicable(kind, email, setup.settings, by_staff=by_staff):
            return unsent("not_applicable", reason)
        if reason := address_problem(email):
            return unsent("failed", reason)
        if content is None:
            try:
                content = self.render(setup, kind, variables)
            except TemplateProblem as problem:
                return unsent("failed", str(problem))
        outcome = MailOutcome(order_id, shop_id, kind, mail_id, "sent", message_id=message_id)
        try:
            async with asyncio.timeout(self._claim_seconds / 2):
                await self._transport.send(
                    OutgoingMail(message_id, self._sender, email, content.subject, content.text, content.html, setup.settings.encoding)
                )
        except TimeoutError as late:
            raise TransientError(f"SMTP exchange took longer than {self._claim_seconds / 2:g} s") from late
        except MailRefused as refused:
            outcome = MailOutcome(order_id, shop_id, kind, mail_id, "failed", str(refused))
        except MailDeferred as deferred:
            if not gives_up_on_deferral(claim.attempts, self._max_deferrals):
                raise TransientError(f"recipient deferred: {deferred}") from deferred
            reason = f"deferred {claim.attempts} times, gave up: {deferred}"
            outcome = MailOutcome(order_id, shop_id, kind, mail_id, "failed", reason)
        return MailAttempt(outcome, "sent", content, variables)

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
        """Claims, sends and records one mail, its outcome recorded at once on its own: for staff commands that mail
        many orders (raises `UnknownOrder` without a contact)."""
        async with pool.acquire() as conn:
            claim = await self.claim(conn, order_id=order_id, kind=kind, cause_id=cause_id)
        if claim is None:
            raise AssertionError("a claim without seen_id never finds the cause handled")
        attempt = await self.send(claim, variables, by_staff=by_staff, content=content)
        async with pool.acquire() as conn:
            return await attempt.record(conn)


def contact_missing(order_id: UUID, cause_occurred_at: datetime) -> Exception:
    """What to raise when a mail's cause arrives before (or without) the order's OrderAccepted."""
    if should_wait_for_contact(cause_occurred_at, datetime.now(timezone.utc)):
        return DependencyMissing(order_id, f"order {order_id} not known to notify yet (its OrderAccepted has not arrived)")
    return PermanentError(f"no contact for order {order_id}")


def inserted_text(contact: dict[str, Any], kind: MailKind) -> str | None:
    """The per-order text of a mail: what the shop's rules insert for this kind, then what staff set for the order."""
    parts = [(contact.get("mail_texts") or {}).get(kind.value), contact.get("inserted_text")]
    return "\n\n".join(part.strip() for part in parts if part and part.strip()) or None
