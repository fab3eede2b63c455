"""Contracts the payments service publishes on `payments.events.v1`."""

from typing import Annotated, Literal

from pydantic import Field

from .envelope import OrderMessage
from .money import CurrencyCode, MinorUnits
from .orders import PaymentMethod


class PaymentAuthorized(OrderMessage):
    """The gateway authorized the order's amount on the customer's card."""

    type: Literal["PaymentAuthorized"] = Field(default="PaymentAuthorized", description="Contract name.")
    method: PaymentMethod = Field(description="Payment method that was authorized.")
    authorization_id: str = Field(description="The gateway's authorization id.")
    amount: MinorUnits = Field(description="Authorized amount.")
    currency: CurrencyCode


class PaymentAuthorizationFailed(OrderMessage):
    """The gateway refused the authorization, or it could not be obtained."""

    type: Literal["PaymentAuthorizationFailed"] = Field(
        default="PaymentAuthorizationFailed", description="Contract name."
    )
    reason: str = Field(description="Why, e.g. card_declined, insufficient_funds.")


class PaymentCaptured(OrderMessage):
    """The authorized amount (or part of it) was captured: the payment is settled."""

    type: Literal["PaymentCaptured"] = Field(default="PaymentCaptured", description="Contract name.")
    capture_id: str = Field(description="The gateway's capture id.")
    amount: MinorUnits = Field(description="Captured amount.")
    currency: CurrencyCode


class PaymentCaptureFailed(OrderMessage):
    """The gateway refused the capture; staff must act."""

    type: Literal["PaymentCaptureFailed"] = Field(default="PaymentCaptureFailed", description="Contract name.")
    reason: str = Field(description="Why the capture failed.")


PaymentsEvent = Annotated[
    PaymentAuthorized | PaymentAuthorizationFailed | PaymentCaptured | PaymentCaptureFailed,
    Field(discriminator="type"),
]
"""Everything on `payments.events.v1`."""
