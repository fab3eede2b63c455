"""Contracts the notify service publishes on `notify.events.v1`."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from .envelope import OrderMessage


class MailKind(StrEnum):
    """The kinds of customer mail."""

    ORDER_CONFIRMATION = "order_confirmation"
    SHIPPED = "shipped"


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
