"""Contracts of the payments service: events on `payments.events.v1`, staff commands, verified provider callbacks."""

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from .commands import Command
from .envelope import Message, OrderMessage
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


class PaymentVoided(OrderMessage):
    """An uncaptured card authorization was released at the gateway (staff or cancel)."""

    type: Literal["PaymentVoided"] = Field(default="PaymentVoided", description="Contract name.")
    authorization_id: str = Field(description="The gateway's authorization id that was released.")
    amount: MinorUnits = Field(description="Amount that was authorized and is now released.")
    currency: CurrencyCode
    reason: str = Field(description="Why it was voided, as given by staff or the cancel.")


class PaymentRefunded(OrderMessage):
    """Part or all of a captured payment went back to the customer."""

    type: Literal["PaymentRefunded"] = Field(default="PaymentRefunded", description="Contract name.")
    refund_id: str = Field(description="The gateway's refund id.")
    amount: MinorUnits = Field(description="Amount refunded by this refund.")
    refunded_total: MinorUnits = Field(description="Everything refunded on the order so far, this refund included.")
    currency: CurrencyCode
    reason: str = Field(description="Why it was refunded.")


class PaymentRequested(OrderMessage):
    """A prepaid order's payment instructions, for notify to mail: pay `amount` with `reference` by `due_date`."""

    type: Literal["PaymentRequested"] = Field(default="PaymentRequested", description="Contract name.")
    method: PaymentMethod = Field(description="bank_transfer or convenience_store.")
    reference: str = Field(description="Payment reference the customer quotes; matches the payment to the order.")
    amount: MinorUnits = Field(description="Amount to pay.")
    currency: CurrencyCode
    due_date: date = Field(description="Last day to pay (in the shop's calendar).")
    pay_to: str | None = Field(
        default=None, description="Where to pay, from the shop's payment settings (bank transfer: bank, branch, account type, number, holder)."
    )
    cancels_when_overdue: bool = Field(
        default=False, description="Whether the order is cancelled automatically once the due date passes unpaid (the shop's setting)."
    )


class PaymentReceived(OrderMessage):
    """Money arrived outside a card gateway (prepaid transfer, cash on delivery, or marked paid by staff).

    `balance` is what is still due after it: 0 settled, > 0 under-paid (balance due), < 0 over-paid (refund owed).
    """

    type: Literal["PaymentReceived"] = Field(default="PaymentReceived", description="Contract name.")
    method: PaymentMethod = Field(description="How it was paid.")
    amount: MinorUnits = Field(description="Amount received by this payment.")
    received_total: MinorUnits = Field(description="Everything received for the order so far, this one included.")
    balance: MinorUnits = Field(description="Still due after this payment: > 0 due, < 0 over-paid (refund owed), 0 settled.")
    currency: CurrencyCode
    source: Literal["provider_callback", "bank_statement", "cash_on_delivery", "staff"] = Field(
        description="Where ordermesh learned of the payment."
    )
    reference: str | None = Field(default=None, description="Payment reference or provider transaction id, if any.")


class PaymentOverdue(OrderMessage):
    """A prepaid order's due date passed with money still due."""

    type: Literal["PaymentOverdue"] = Field(default="PaymentOverdue", description="Contract name.")
    reference: str = Field(description="The payment reference that was not (fully) paid.")
    due_date: date = Field(description="The due date that passed.")
    balance: MinorUnits = Field(description="Amount still due.")
    currency: CurrencyCode
    cancel_order: bool = Field(
        default=False, description="The shop cancels overdue prepaid orders automatically: orders cancels this one."
    )


class PaymentReauthorizationNeeded(OrderMessage):
    """A card authorization will expire before the order ships; staff must re-authorize or ship sooner."""

    type: Literal["PaymentReauthorizationNeeded"] = Field(
        default="PaymentReauthorizationNeeded", description="Contract name."
    )
    authorization_id: str = Field(description="The gateway's authorization id that is about to expire.")
    authorized_at: AwareDatetime = Field(description="When it was authorized.")
    expires_at: AwareDatetime = Field(description="When the gateway will drop it.")


class PaymentCancelled(OrderMessage):
    """The order was cancelled with cancel_payment and its payment was reversed as far as it could be.

    `outcome`: `voided` (an uncaptured card authorization released), `refunded` (what was captured went back),
    `request_cancelled` (a prepaid payment request withdrawn), `nothing_to_cancel` (no money was ever at stake).
    `refund_owed` is money received outside a gateway (bank transfer, convenience store) that staff must pay back.
    """

    type: Literal["PaymentCancelled"] = Field(default="PaymentCancelled", description="Contract name.")
    outcome: Literal["voided", "refunded", "request_cancelled", "nothing_to_cancel"] = Field(
        description="What was done to the payment."
    )
    amount: MinorUnits = Field(description="Amount released, refunded or no longer requested; 0 for nothing_to_cancel.")
    refund_owed: MinorUnits = Field(
        default=0, description="Money already received outside a gateway that must be paid back by hand (0: none)."
    )
    currency: CurrencyCode | None = Field(description="Currency of the amounts; none when the order never had a payment.")


class PaymentCancellationFailed(OrderMessage):
    """The order was cancelled with cancel_payment but its payment could not be reversed; staff must fix it.

    The order is still cancelled: it is never captured or charged afterwards, whatever the gateway holds.
    """

    type: Literal["PaymentCancellationFailed"] = Field(
        default="PaymentCancellationFailed", description="Contract name."
    )
    reason: str = Field(description="Why, e.g. the gateway's refusal or a capture still in progress.")


class PaymentAmountChanged(OrderMessage):
    """Payments honoured an order edit (`OrderEdited`): the amount at stake now matches the order's new total.

    `outcome`: `reauthorized` (a card authorization replaced by one for the new amount), `authorization_reduced`
    (less will be captured), `refunded` (captured money given back), `balance_requested` (the customer must pay the
    difference: a new payment request or staff collect it), `request_updated` (an unpaid prepaid request or a
    cash-on-delivery amount now asks for the new total), `credit_rechecked` (deferred: a fresh credit check for a
    higher amount), `credit_amount_updated` (deferred: a lower amount reported to the provider),
    `nothing_to_change` (no money at stake, e.g. points only).
    """

    type: Literal["PaymentAmountChanged"] = Field(default="PaymentAmountChanged", description="Contract name.")
    edit_no: int = Field(ge=1, description="The edit this answers.")
    outcome: Literal[
        "reauthorized",
        "authorization_reduced",
        "refunded",
        "balance_requested",
        "request_updated",
        "credit_rechecked",
        "credit_amount_updated",
        "nothing_to_change",
    ] = Field(description="What was done to the payment.")
    previous_amount: MinorUnits = Field(description="Amount at stake before (authorized, requested or checked).")
    amount: MinorUnits = Field(description="Amount at stake now.")
    refunded: MinorUnits = Field(default=0, ge=0, description="Refunded by this change (0: none).")
    balance_due: MinorUnits = Field(default=0, ge=0, description="Still to be paid by the customer (0: none).")
    currency: CurrencyCode


class PaymentAmountChangeFailed(OrderMessage):
    """The gateway refused to change the amount for an edit: the order keeps the edit; staff fix it on the gateway
    side (seed 000) or retry with `RetryAmountChange`. Nothing was lost: the previous amount still stands."""

    type: Literal["PaymentAmountChangeFailed"] = Field(default="PaymentAmountChangeFailed", description="Contract name.")
    edit_no: int = Field(ge=1, description="The edit this answers.")
    requested_amount: MinorUnits = Field(description="The amount the edit asked for.")
    currency: CurrencyCode
    reason: str = Field(description="The gateway's refusal or the failure.")


class CreditCheckPending(OrderMessage):
    """Deferred payment: the provider has not decided the credit check yet; payments polls until it does."""

    type: Literal["CreditCheckPending"] = Field(default="CreditCheckPending", description="Contract name.")
    check_id: str = Field(description="The provider's id of the credit check.")
    amount: MinorUnits = Field(description="Amount checked.")
    currency: CurrencyCode


class CreditCheckApproved(OrderMessage):
    """Deferred payment: the provider approved the customer for the amount; the order may ship."""

    type: Literal["CreditCheckApproved"] = Field(default="CreditCheckApproved", description="Contract name.")
    check_id: str = Field(description="The provider's id of the credit check.")
    amount: MinorUnits = Field(description="Amount approved.")
    currency: CurrencyCode


class CreditCheckRejected(OrderMessage):
    """Deferred payment: the provider refused the customer (or the check failed for good); staff must act."""

    type: Literal["CreditCheckRejected"] = Field(default="CreditCheckRejected", description="Contract name.")
    check_id: str | None = Field(description="The provider's id of the credit check, if one was made.")
    reason: str = Field(description="The provider's reason.")


PaymentsEvent = Annotated[
    PaymentAuthorized
    | PaymentAuthorizationFailed
    | PaymentCaptured
    | PaymentCaptureFailed
    | PaymentVoided
    | PaymentRefunded
    | PaymentRequested
    | PaymentReceived
    | PaymentOverdue
    | PaymentReauthorizationNeeded
    | PaymentCancelled
    | PaymentCancellationFailed
    | PaymentAmountChanged
    | PaymentAmountChangeFailed
    | CreditCheckPending
    | CreditCheckApproved
    | CreditCheckRejected,
    Field(discriminator="type"),
]
"""Everything on `payments.events.v1`."""


class SetPaymentSettings(Command):
    """Sets a shop's payment settings (every field replaces the current value)."""

    type: Literal["SetPaymentSettings"] = Field(default="SetPaymentSettings", description="Contract name.")
    capture_at_authorization: bool = Field(
        default=False, description="Capture card payments right after authorization instead of at shipping."
    )
    prepaid_due_days: int = Field(default=7, ge=1, le=60, description="Days a prepaid order has to pay.")
    authorization_valid_days: int = Field(
        default=7, ge=1, le=30, description="Days the card gateway keeps an authorization (Stripe: 7)."
    )
    card_gateway: Literal["sandbox", "stripe"] = Field(
        default="sandbox", description="Which gateway takes the shop's card payments (each payment stays on the one it started on)."
    )
    reauthorize_expiring: bool = Field(
        default=False, description="Re-authorize a card authorization that would expire before shipping instead of only flagging it."
    )
    cancel_overdue_prepaid: bool = Field(
        default=False, description="Cancel a prepaid order automatically when its due date passes unpaid."
    )
    bank_account: str | None = Field(
        default=None,
        max_length=300,
        description="The account customers pay bank transfers to, as the payment instructions show it "
        "(e.g. 京都中央銀行 本店営業部 普通 1234567 カ）キョウトチャホ); none leaves it out of the mail.",
    )


class _PaymentCommand(Command):
    """A staff command about one order's payment."""

    order_id: UUID = Field(description="The order whose payment it acts on.")
    reason: str = Field(min_length=1, max_length=500, description="Why staff do this; kept in the ledger.")


class VoidPayment(_PaymentCommand):
    """Releases the order's uncaptured card authorization."""

    type: Literal["VoidPayment"] = Field(default="VoidPayment", description="Contract name.")


class RefundPayment(_PaymentCommand):
    """Refunds part or all of what was captured; more than is left is refused."""

    type: Literal["RefundPayment"] = Field(default="RefundPayment", description="Contract name.")
    amount: MinorUnits | None = Field(default=None, gt=0, description="Amount to refund; none refunds all that is left.")


class RetryCapture(_PaymentCommand):
    """Captures again after a failed capture, optionally a smaller amount; more than authorized is refused."""

    type: Literal["RetryCapture"] = Field(default="RetryCapture", description="Contract name.")
    amount: MinorUnits | None = Field(default=None, gt=0, description="Amount to capture; none captures all authorized.")


class MarkPaymentReceived(_PaymentCommand):
    """Records money received outside any gateway or statement (e.g. paid at the counter), by hand."""

    type: Literal["MarkPaymentReceived"] = Field(default="MarkPaymentReceived", description="Contract name.")
    amount: MinorUnits = Field(gt=0, description="Amount received.")


class ImportBankStatement(Command):
    """Reconciles a bank statement CSV (columns transaction_id,date,reference,amount) against prepaid orders."""

    type: Literal["ImportBankStatement"] = Field(default="ImportBankStatement", description="Contract name.")
    csv_text: str = Field(min_length=1, max_length=5_000_000, description="The statement as CSV text with a header row.")


class CheckAuthorizations(Command):
    """Finds the shop's card authorizations that expire before shipping and flags them."""

    type: Literal["CheckAuthorizations"] = Field(default="CheckAuthorizations", description="Contract name.")


class CheckOverduePayments(Command):
    """Runs the overdue check of the shop's prepaid orders as of a given time, as the periodic check does with the
    clock: each order whose due date passed unpaid is announced with `PaymentOverdue` (once), and cancelled where the
    shop cancels overdue orders automatically. For staff catching up after downtime, and for rehearsing the rule."""

    type: Literal["CheckOverduePayments"] = Field(default="CheckOverduePayments", description="Contract name.")
    as_of: AwareDatetime | None = Field(
        default=None,
        description="The time to check as of, with its offset (a due date passes at the end of that day in the "
        "offset given); none: now.",
    )


class RetryAmountChange(_PaymentCommand):
    """Tries again to bring the payment to the order's latest edited total after `PaymentAmountChangeFailed`."""

    type: Literal["RetryAmountChange"] = Field(default="RetryAmountChange", description="Contract name.")


PaymentsCommand = Annotated[
    SetPaymentSettings
    | VoidPayment
    | RefundPayment
    | RetryCapture
    | MarkPaymentReceived
    | ImportBankStatement
    | CheckAuthorizations
    | CheckOverduePayments
    | RetryAmountChange,
    Field(discriminator="type"),
]
"""Everything on `payments.commands.v1`."""


class ProviderPaymentReported(Message):
    """A verified provider callback that money arrived for a payment reference (on `payments.callbacks.v1`).

    `event_id` is derived from the provider's event id, so a repeated callback is the same message.
    """

    type: Literal["ProviderPaymentReported"] = Field(default="ProviderPaymentReported", description="Contract name.")
    order_id: UUID = Field(description="The order the reference belongs to.")
    provider_event_id: str = Field(min_length=1, max_length=128, description="The provider's id of the callback.")
    reference: str = Field(min_length=1, max_length=64, description="Payment reference the customer quoted.")
    amount: MinorUnits = Field(gt=0, description="Amount received.")
    currency: CurrencyCode
    paid_at: AwareDatetime = Field(description="When the provider received the money.")

    def kafka_key(self) -> str:
        """The Kafka key: the order id."""
        return str(self.order_id)


PaymentsCallback = Annotated[ProviderPaymentReported, Field(discriminator="type")]
"""Everything on `payments.callbacks.v1`."""
