"""Contracts the notify service publishes on `notify.events.v1`."""

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from .commands import Command
from .envelope import OrderMessage


class MailKind(StrEnum):
    """The kinds of customer mail."""

    ORDER_CONFIRMATION = "order_confirmation"
    PAYMENT_INSTRUCTIONS = "payment_instructions"
    PAYMENT_RECEIVED = "payment_received"
    PREPARING_SHIPMENT = "preparing_shipment"
    SHIPPED = "shipped"
    POINTS_CONFIRMED = "points_confirmed"
    ORDER_CHANGED = "order_changed"
    ORDER_CANCELLED = "order_cancelled"
    MESSAGE_TO_CUSTOMER = "message_to_customer"


class MailDevice(StrEnum):
    """Which device a mail template is for; `any` serves both when no device-specific one exists."""

    PC = "pc"
    MOBILE = "mobile"
    ANY = "any"


class MailSent(OrderMessage):
    """A customer mail was handed to the SMTP server."""

    type: Literal["MailSent"] = Field(default="MailSent", description="Contract name.")
    mail_kind: MailKind = Field(description="Which mail.")
    message_id: str = Field(description="The mail's Message-ID header.")


class MailFailed(OrderMessage):
    """A customer mail could not be sent, for good."""

    type: Literal["MailFailed"] = Field(default="MailFailed", description="Contract name.")
    mail_kind: MailKind = Field(description="Which mail.")
    reason: str = Field(description="Why, e.g. the SMTP server's answer.")


class MailNotApplicable(OrderMessage):
    """No mail of this kind goes out for the order (no address, or the shop turned the kind off)."""

    type: Literal["MailNotApplicable"] = Field(default="MailNotApplicable", description="Contract name.")
    mail_kind: MailKind = Field(description="Which mail.")
    reason: str = Field(description="Why not.")


NotifyEvent = Annotated[MailSent | MailFailed | MailNotApplicable, Field(discriminator="type")]
"""Everything on `notify.events.v1`."""


class ResendMail(Command):
    """Sends one logged mail again (a remail), as a new mail caused by this command."""

    type: Literal["ResendMail"] = Field(default="ResendMail", description="Contract name.")
    order_id: UUID = Field(description="The order the mail belongs to.")
    mail_id: UUID = Field(description="The mail to send again (from the mail log).")


class SendBulkMail(Command):
    """Sends one kind of mail to many orders at once; answered with one result per order."""

    type: Literal["SendBulkMail"] = Field(default="SendBulkMail", description="Contract name.")
    mail_kind: MailKind = Field(description="Which mail to send.")
    order_ids: list[UUID] = Field(min_length=1, max_length=1000, description="The orders to mail.")
    subject: str | None = Field(
        default=None, max_length=200, description="Subject of a message_to_customer mail (that kind only)."
    )
    message: str | None = Field(
        default=None, max_length=10000, description="Text of a message_to_customer mail (that kind only)."
    )


class SendMessageToCustomer(Command):
    """Sends a free message from staff to the customer of one order."""

    type: Literal["SendMessageToCustomer"] = Field(default="SendMessageToCustomer", description="Contract name.")
    order_id: UUID = Field(description="The order whose customer is mailed.")
    subject: str = Field(min_length=1, max_length=200, description="What the message is about (goes into the subject).")
    message: str = Field(min_length=1, max_length=10000, description="The message text.")


class PreviewMail(Command):
    """Renders a mail for an order without sending it; the reply's details hold subject, text and html."""

    type: Literal["PreviewMail"] = Field(default="PreviewMail", description="Contract name.")
    order_id: UUID = Field(description="The order to render the mail for.")
    mail_kind: MailKind = Field(description="Which mail.")
    device: Literal["pc", "mobile"] | None = Field(
        default=None, description="Render for this device instead of the customer's."
    )


class SetShopMailSettings(Command):
    """Sets a shop's mail language, signature, encoding and the kinds it does not send."""

    type: Literal["SetShopMailSettings"] = Field(default="SetShopMailSettings", description="Contract name.")
    language: Literal["ja", "en"] = Field(default="ja", description="Language of the default templates.")
    signature: str = Field(max_length=2000, description="Added to the end of every mail of the shop.")
    encoding: Literal["utf-8", "iso-2022-jp"] = Field(
        default="utf-8", description="Mail charset; iso-2022-jp falls back to utf-8 for a mail it cannot carry."
    )
    disabled_kinds: list[MailKind] = Field(
        default_factory=list, description="Mail kinds the shop turned off (they end as not applicable)."
    )


class SaveMailTemplate(Command):
    """Saves a shop's own template for a mail kind and device; refused when it does not render."""

    type: Literal["SaveMailTemplate"] = Field(default="SaveMailTemplate", description="Contract name.")
    mail_kind: MailKind = Field(description="Which mail the template is for.")
    device: MailDevice = Field(default=MailDevice.ANY, description="Which device the template is for.")
    subject: str = Field(min_length=1, max_length=500, description="Jinja2 template of the subject line.")
    text: str = Field(min_length=1, max_length=50000, description="Jinja2 template of the plain-text part.")
    html: str | None = Field(
        default=None, max_length=100000,
        description="Jinja2 template of the HTML part (autoescaped); none derives it from the text part.",
    )


class SetOrderMailText(Command):
    """Sets text inserted into every later mail of one order (until rules do this)."""

    type: Literal["SetOrderMailText"] = Field(default="SetOrderMailText", description="Contract name.")
    order_id: UUID = Field(description="The order.")
    text: str = Field(max_length=2000, description="Text inserted above the signature; empty removes it.")


NotifyCommand = Annotated[
    ResendMail | SendBulkMail | SendMessageToCustomer | PreviewMail | SetShopMailSettings | SaveMailTemplate
    | SetOrderMailText,
    Field(discriminator="type"),
]
"""Everything on `notify.commands.v1`."""
