"""`ordermesh payments …`: staff commands and reads of the payments service."""

import asyncio
import getpass
import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Optional
from uuid import UUID

import typer

from ordermesh_contracts import (
    CheckAuthorizations,
    CheckOverduePayments,
    Command,
    ImportBankStatement,
    MarkPaymentReceived,
    RefundPayment,
    RetryAmountChange,
    RetryCapture,
    SetPaymentSettings,
    VoidPayment,
    topics,
)

from . import output, when
from .client import Connection, get_json, send_command

app = typer.Typer(help="The payments service.", no_args_is_help=True)


def _send(command: Command) -> None:
    reply = asyncio.run(send_command(Connection.from_environment(), topics.PAYMENTS_COMMANDS, command))
    raise typer.Exit(output.print_reply(reply))


@app.command()
def show(order_id: UUID, as_json: bool = typer.Option(False, "--json")) -> None:
    """An order's payment: authorized, captured, refunded, received, balance, credit check, amount changes after
    edits, and its gateway ledger."""
    view = get_json(Connection.from_environment(), "payments", "/api/payments/order", order_id=str(order_id))
    if as_json:
        output.console.print_json(json.dumps(view, default=str))
        return
    output.print_rows([view["summary"] | {"status": view["payment"]["status"], "method": view["payment"]["method"]}], title="payment")
    if view.get("after_edits"):
        output.print_rows([view["after_edits"]], title="credit check and edits")
    output.print_rows(view["ledger"], title="gateway calls")
    if view.get("credit_checks"):
        output.print_rows(view["credit_checks"], title="credit checks")
    if view.get("amount_changes"):
        output.print_rows(view["amount_changes"], title="amount changes (edits)")
    if view["received"]:
        output.print_rows(view["received"], title="received")


@app.command()
def void(order_id: UUID, shop: str = typer.Option(..., help="Shop id."), reason: str = typer.Option(...)) -> None:
    """Releases the order's uncaptured card authorization."""
    _send(VoidPayment(shop_id=shop, issued_by=getpass.getuser(), order_id=order_id, reason=reason))


@app.command()
def refund(
    order_id: UUID,
    shop: str = typer.Option(..., help="Shop id."),
    reason: str = typer.Option(...),
    amount: int | None = typer.Option(None, help="Minor units; omit to refund all that is left."),
) -> None:
    """Refunds part or all of the captured amount."""
    _send(RefundPayment(shop_id=shop, issued_by=getpass.getuser(), order_id=order_id, reason=reason, amount=amount))


@app.command("retry-capture")
def retry_capture(
    order_id: UUID,
    shop: str = typer.Option(..., help="Shop id."),
    reason: str = typer.Option(...),
    amount: int | None = typer.Option(None, help="Minor units; omit to capture all authorized."),
) -> None:
    """Captures again after a failed capture."""
    _send(RetryCapture(shop_id=shop, issued_by=getpass.getuser(), order_id=order_id, reason=reason, amount=amount))


@app.command("mark-paid")
def mark_paid(
    order_id: UUID,
    amount: int = typer.Option(..., help="Minor units received."),
    shop: str = typer.Option(..., help="Shop id."),
    reason: str = typer.Option(..., help="Why, e.g. paid in cash at the counter."),
) -> None:
    """Records money received by hand (publishes PaymentReceived with the balance)."""
    _send(MarkPaymentReceived(shop_id=shop, issued_by=getpass.getuser(), order_id=order_id, reason=reason, amount=amount))


@app.command("retry-amount-change")
def retry_amount_change(order_id: UUID, shop: str = typer.Option(..., help="Shop id."), reason: str = typer.Option(...)) -> None:
    """Tries again to bring the payment to the order's latest edited total after a failed amount change."""
    _send(RetryAmountChange(shop_id=shop, issued_by=getpass.getuser(), order_id=order_id, reason=reason))


class CardGateway(StrEnum):
    """The card gateways a shop can choose."""

    SANDBOX = "sandbox"
    STRIPE = "stripe"


@app.command("set-settings")
def set_settings(
    shop: str = typer.Option(..., help="Shop id."),
    card_gateway: CardGateway = typer.Option(CardGateway.SANDBOX, help="Where the shop's new card payments go."),
    capture_at_authorization: bool = typer.Option(False, help="Capture right after authorization instead of at shipping."),
    prepaid_due_days: int = typer.Option(7, help="Days a prepaid order has to pay."),
    authorization_valid_days: int = typer.Option(7, help="Days the card gateway keeps an authorization (Stripe: 7)."),
    reauthorize_expiring: bool = typer.Option(False, help="Renew authorizations that would expire before shipping."),
    cancel_overdue_prepaid: bool = typer.Option(False, help="Cancel prepaid orders whose due date passed unpaid."),
    bank_account: Optional[str] = typer.Option(
        None, help="Account bank transfers go to, as the payment mail shows it, e.g. '京都中央銀行 本店営業部 普通 1234567 カ）キョウトチャホ'."
    ),
) -> None:
    """Replaces the shop's payment settings (a gateway the service has no credentials for is refused)."""
    _send(SetPaymentSettings(
        shop_id=shop, issued_by=getpass.getuser(), card_gateway=card_gateway.value, capture_at_authorization=capture_at_authorization,
        prepaid_due_days=prepaid_due_days, authorization_valid_days=authorization_valid_days,
        reauthorize_expiring=reauthorize_expiring, cancel_overdue_prepaid=cancel_overdue_prepaid, bank_account=bank_account,
    ))


@app.command("import-statement")
def import_statement(csv_file: Path, shop: str = typer.Option(..., help="Shop id.")) -> None:
    """Reconciles a bank statement CSV (transaction_id,date,reference,amount) against the shop's prepaid orders."""
    _send(ImportBankStatement(shop_id=shop, issued_by=getpass.getuser(), csv_text=csv_file.read_text(encoding="utf-8")))


@app.command("check-authorizations")
def check_authorizations(shop: str = typer.Option(..., help="Shop id.")) -> None:
    """Flags the shop's card authorizations that would expire before shipping."""
    _send(CheckAuthorizations(shop_id=shop, issued_by=getpass.getuser()))


@app.command("check-overdue")
def check_overdue(
    shop: str = typer.Option(..., help="Shop id."),
    as_of: Optional[datetime] = typer.Option(
        None, "--as-of", parser=when.moment, metavar="TIME", help=f"The time: {when.FORMATS}; now if left out."
    ),
) -> None:
    """Runs the overdue check of the shop's prepaid orders as of a time: each order past its due date unpaid is
    flagged overdue, and cancelled if the shop cancels overdue orders automatically."""
    _send(CheckOverduePayments(shop_id=shop, issued_by=getpass.getuser(), as_of=as_of))
