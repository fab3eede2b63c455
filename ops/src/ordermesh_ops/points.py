"""`ordermesh points …`: staff commands and reads of the points service."""

import asyncio
from datetime import date, datetime
from enum import StrEnum
from typing import Optional
from uuid import UUID
from zoneinfo import ZoneInfo

import typer

from ordermesh_contracts import (
    BulkConfirmPoints,
    DeductPoints,
    ExpirePoints,
    GrantPoints,
    SetPointsSettings,
    topics,
)

from . import output, when
from .client import Connection, get_json, send_command

app = typer.Typer(help="The points service.", no_args_is_help=True)

SHOP = typer.Option(..., "--shop", help="The shop id.")
CUSTOMER = typer.Option(..., "--customer", help="The shop's customer id.")
BY = typer.Option("ops-cli", "--by", help="Who issues the command.")
JSON = typer.Option(False, "--json", help="Print JSON.")
SHOP_TIMEZONE = ZoneInfo("Asia/Tokyo")


class ConfirmOn(StrEnum):
    """Which kind of payment event confirms points (one choice for every payment method)."""

    CAPTURED = "captured"
    RECEIVED = "received"
    EITHER = "either"
    MANUAL = "manual"


class ConfirmingEvent(StrEnum):
    """A payment event that may confirm points, told apart by the order's payment method."""

    CARD_CAPTURED = "card_captured"
    DEFERRED_CAPTURED = "deferred_captured"
    PREPAID_RECEIVED = "prepaid_received"
    CASH_COLLECTED = "cash_collected"
    PLATFORM_PAID = "platform_paid"


def _send(command) -> None:
    reply = asyncio.run(send_command(Connection.from_environment(), topics.POINTS_COMMANDS, command))
    raise typer.Exit(output.print_reply(reply))


@app.command()
def balance(shop: str = SHOP, customer: str = CUSTOMER, as_json: bool = JSON) -> None:
    """A customer's balances: available, provisional, reserved, used, lifetime, debt."""
    found = get_json(Connection.from_environment(), "points", "/api/points/balance", shop_id=shop, customer_id=customer)
    output.print_rows([found], title=f"points of {customer}", as_json=as_json)


@app.command()
def ledger(shop: str = SHOP, customer: str = CUSTOMER, as_json: bool = JSON) -> None:
    """A customer's ledger, oldest first, each entry with its cause."""
    found = get_json(Connection.from_environment(), "points", "/api/points/ledger", shop_id=shop, customer_id=customer)
    output.print_rows(found["entries"], title=f"ledger of {customer}", as_json=as_json)


@app.command()
def order(order_id: UUID, as_json: bool = JSON) -> None:
    """An order's points: status (confirmed or not), points, points used, entries."""
    found = get_json(Connection.from_environment(), "points", "/api/points/order", order_id=str(order_id))
    entries = found.pop("entries")
    output.print_rows([found], title="order points", as_json=as_json)
    output.print_rows(entries, title="entries", as_json=as_json)


@app.command()
def grant(
    points: int,
    shop: str = SHOP,
    customer: str = CUSTOMER,
    reason: Optional[str] = typer.Option(None, "--reason", help="Why (required)."),
    order_id: Optional[UUID] = typer.Option(None, "--order", help="The order it is about."),
    new_customer: bool = typer.Option(
        False, "--new-customer", help="The customer has no order yet (e.g. a sign-up bonus): open their account."
    ),
    by: str = BY,
) -> None:
    """Grant points to a customer by hand, with a reason (--new-customer for one who has not ordered yet)."""
    _send(GrantPoints(
        shop_id=shop, issued_by=by, customer_id=customer, points=points, reason=reason, order_id=order_id, new_customer=new_customer
    ))


@app.command()
def deduct(
    points: int,
    shop: str = SHOP,
    customer: str = CUSTOMER,
    reason: Optional[str] = typer.Option(None, "--reason", help="Why (required)."),
    order_id: Optional[UUID] = typer.Option(None, "--order", help="The order it is about."),
    by: str = BY,
) -> None:
    """Deduct points from a customer by hand, with a reason (corrects confirmed points)."""
    _send(DeductPoints(shop_id=shop, issued_by=by, customer_id=customer, points=points, reason=reason, order_id=order_id))


@app.command("bulk-confirm")
def bulk_confirm(
    shop: str = SHOP,
    order_ids: Optional[list[UUID]] = typer.Option(None, "--order", help="An order to confirm (repeatable)."),
    paid_from: Optional[datetime] = typer.Option(
        None, "--paid-from", parser=when.moment, metavar="TIME", help=f"Orders paid at or after: {when.FORMATS}."
    ),
    paid_until: Optional[datetime] = typer.Option(
        None, "--paid-until", parser=when.moment, metavar="TIME", help=f"Orders paid before: {when.FORMATS}."
    ),
    by: str = BY,
) -> None:
    """Confirm provisional points of listed orders or of every order paid in a period; one result per order."""
    _send(BulkConfirmPoints(shop_id=shop, issued_by=by, order_ids=order_ids or None, paid_from=paid_from, paid_until=paid_until))


@app.command()
def expire(
    shop: str = SHOP,
    as_of: Optional[date] = typer.Option(
        None, "--as-of", parser=when.day, metavar="DAY", help=f"The day: {when.FORMATS}; the shop's today if left out."
    ),
    by: str = BY,
) -> None:
    """Expire the shop's old confirmed points as of a day (oldest first); the service also does it daily by itself."""
    _send(ExpirePoints(shop_id=shop, issued_by=by, as_of=as_of or datetime.now(SHOP_TIMEZONE).date()))


@app.command("expiry-runs")
def expiry_runs(shop: str = SHOP, as_json: bool = JSON) -> None:
    """The shop's scheduled expiry runs, newest first: day, customers and points expired."""
    found = get_json(Connection.from_environment(), "points", "/api/points/expiry-runs", shop_id=shop)
    output.print_rows(found["runs"], title=f"expiry runs of {shop}", as_json=as_json)


@app.command()
def settings(
    shop: str = SHOP,
    rate_percent: Optional[int] = typer.Option(None, "--rate-percent", help="Points per 100 of merchandise."),
    confirm_on: Optional[ConfirmOn] = typer.Option(
        None, "--confirm-on", help="One choice for every payment method (drops a list of confirming events)."
    ),
    confirm_on_events: Optional[list[ConfirmingEvent]] = typer.Option(
        None, "--confirm-on-event", help="A payment event that confirms points (repeatable: exactly these confirm)."
    ),
    allow_negative: Optional[bool] = typer.Option(
        None, "--allow-negative/--no-allow-negative", help="Whether deductions may take a balance below zero."
    ),
    expiry_months: Optional[int] = typer.Option(None, "--expiry-months", help="Confirmed points expire after this many months."),
    no_expiry: bool = typer.Option(False, "--no-expiry", help="Confirmed points never expire."),
    as_json: bool = JSON,
    by: str = BY,
) -> None:
    """Shows a shop's points rules, or changes the ones given: every option left out keeps its value (campaigns too)."""
    confirm_on_events = confirm_on_events or None
    connection = Connection.from_environment()
    current = get_json(connection, "points", "/api/points/settings", shop_id=shop)
    changes = (rate_percent, confirm_on, confirm_on_events, allow_negative, expiry_months)
    if all(change is None for change in changes) and not no_expiry:
        output.print_rows([current], title=f"points settings of {shop}", as_json=as_json)
        return
    if confirm_on is not None and confirm_on_events:
        raise typer.BadParameter("give --confirm-on or --confirm-on-event, not both")
    if no_expiry and expiry_months is not None:
        raise typer.BadParameter("give --expiry-months or --no-expiry, not both")
    if confirm_on_events:
        events = [event.value for event in confirm_on_events]
    else:
        events = None if confirm_on is not None else current["confirm_on_events"]
    _send(SetPointsSettings(
        shop_id=shop, issued_by=by,
        rate_percent=current["rate_percent"] if rate_percent is None else rate_percent,
        campaigns=current["campaigns"],
        confirm_on=confirm_on.value if confirm_on is not None else current["confirm_on"],
        confirm_on_events=events,
        allow_negative=current["allow_negative"] if allow_negative is None else allow_negative,
        expiry_months=None if no_expiry else (current["expiry_months"] if expiry_months is None else expiry_months),
    ))
