"""`ordermesh orders …`: staff commands and reads of the orders service."""

import asyncio
import uuid
from datetime import date
from typing import Optional

import typer
from ordermesh_contracts import (
    Address,
    AddTask,
    AddToWatchList,
    BulkUpdateOrders,
    CancelOrder,
    CloseTask,
    ConfirmAddress,
    ConfirmDeliveryDate,
    EditOrder,
    HoldOrder,
    LineChange,
    ReturnItems,
    ReturnLine,
    MergeOrders,
    MovedLine,
    OrderChanges,
    OrderFilter,
    ReleaseOrder,
    RemoveFromWatchList,
    ResumeAuto,
    SetOrderStage,
    SetShippingFees,
    SplitOrder,
    Stage,
    topics,
)
from pydantic import ValidationError

from .client import Connection, get_json, send_command
from . import when
from .order_contents import print_contents
from .output import console, print_reply, print_rows
from .trace import resolve_order_or_exit

app = typer.Typer(help="The orders service: list, show and act on orders.", no_args_is_help=True)
ShopOption = typer.Option(..., "--shop", help="The shop acting.")
StaffOption = typer.Option("staff:cli", "--by", help="Who is acting.")


def _send(command) -> None:
    reply = asyncio.run(send_command(Connection.from_environment(), topics.ORDERS_COMMANDS, command))
    raise typer.Exit(print_reply(reply))


@app.command("list")
def list_orders(
    shop: Optional[str] = typer.Option(None, "--shop"),
    stage: Optional[Stage] = typer.Option(None),
    child_status: Optional[str] = typer.Option(None, "--status"),
    channel: Optional[str] = typer.Option(None),
    flag: Optional[str] = typer.Option(None, help="flag name, with --flag-value"),
    flag_value: Optional[str] = typer.Option(None),
    open_task: Optional[str] = typer.Option(None, help="orders with an open task of this kind"),
    created_from: Optional[date] = typer.Option(
        None, "--from", parser=when.day, metavar="DAY", help=f"Created on or after this day: {when.FORMATS}."
    ),
    created_to: Optional[date] = typer.Option(
        None, "--to", parser=when.day, metavar="DAY", help=f"Created on or before this day: {when.FORMATS}."
    ),
    limit: int = typer.Option(100),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Lists orders by stage, child status, flag, open task, shop, channel and date."""
    rows = get_json(
        Connection.from_environment(), "orders", "/api/orders", shop_id=shop, stage=stage.value if stage else None,
        child_status=child_status, channel=channel, flag=flag, flag_value=flag_value, open_task=open_task,
        created_from=created_from.isoformat() if created_from else None,
        created_to=created_to.isoformat() if created_to else None, limit=limit,
    )["orders"]
    print_rows(rows, title="orders", as_json=as_json)


@app.command()
def show(
    order: str = typer.Argument(..., help="order id or the shop's order number"),
    shop: Optional[str] = typer.Option(None, "--shop", help="the shop, when several use the order number"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Shows one order: customer, addresses, lines and charges, every flag, its amount and tax per rate, every task and its full history."""
    connection = Connection.from_environment()
    order_id = resolve_order_or_exit(connection, order, shop)
    view = get_json(connection, "orders", "/api/orders/order", order_id=str(order_id))
    if as_json:
        print_rows([view], as_json=True)
        return
    console.print(f"[bold]{view['external_order_no']}[/bold] {view['order_id']} · {view['stage']} ({view['mode']}) · {view['total']} {view['currency']}")
    print_contents(view)
    print_rows([{"flag": k, "value": v} for k, v in view["flags"].items()], title="flags")
    if view.get("tax_breakdown"):
        print_rows(
            [{"rate": f"{r['rate_percent']}%", "amount (tax incl.)": r["subtotal"], "tax": r["tax"]} for r in view["tax_breakdown"]],
            title=f"tax per rate ({view['currency']})",
        )
    if view["tasks"]:
        print_rows(view["tasks"], title="tasks")
    print_rows([{k: h[k] for k in ("at", "actor", "what", "details")} for h in view["history"]], title="history")


@app.command()
def hold(order_id: uuid.UUID, reason: str, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Puts an order on hold."""
    _send(HoldOrder(shop_id=shop, issued_by=by, order_id=order_id, reason=reason))


@app.command()
def release(order_id: uuid.UUID, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Takes an order off hold."""
    _send(ReleaseOrder(shop_id=shop, issued_by=by, order_id=order_id))


@app.command("set-stage")
def set_stage(order_id: uuid.UUID, stage: Stage, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Moves an order to a stage by hand (the order switches to manual mode)."""
    _send(SetOrderStage(shop_id=shop, issued_by=by, order_id=order_id, stage=stage))


@app.command("resume-auto")
def resume_auto(order_id: uuid.UUID, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Switches an order back to automatic progress."""
    _send(ResumeAuto(shop_id=shop, issued_by=by, order_id=order_id))


@app.command("confirm-address")
def confirm_address(order_id: uuid.UUID, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Confirms the order's address for good."""
    _send(ConfirmAddress(shop_id=shop, issued_by=by, order_id=order_id))


@app.command("confirm-date")
def confirm_date(order_id: uuid.UUID, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Confirms the order's delivery date for good."""
    _send(ConfirmDeliveryDate(shop_id=shop, issued_by=by, order_id=order_id))


@app.command("add-task")
def add_task(order_id: uuid.UUID, note: str, blocking: bool = False, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Adds a task for staff to an order."""
    _send(AddTask(shop_id=shop, issued_by=by, order_id=order_id, note=note, blocking=blocking))


@app.command("close-task")
def close_task(order_id: uuid.UUID, task_id: int, note: Optional[str] = None, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Closes a task (closing a check task confirms its flag)."""
    _send(CloseTask(shop_id=shop, issued_by=by, order_id=order_id, task_id=task_id, note=note))


@app.command("watch")
def watch(customer_id: str, reason: str, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Watch-lists a customer."""
    _send(AddToWatchList(shop_id=shop, issued_by=by, customer_id=customer_id, reason=reason))


@app.command("unwatch")
def unwatch(customer_id: str, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Takes a customer off the watch list."""
    _send(RemoveFromWatchList(shop_id=shop, issued_by=by, customer_id=customer_id))


@app.command("bulk-update")
def bulk_update(
    order_ids: list[uuid.UUID] = typer.Argument(None),
    stage: Optional[Stage] = typer.Option(None, help="or all orders at this stage"),
    created_from: Optional[date] = typer.Option(
        None, "--from", parser=when.day, metavar="DAY", help=f"Orders created on or after: {when.FORMATS}."
    ),
    created_to: Optional[date] = typer.Option(
        None, "--to", parser=when.day, metavar="DAY", help=f"Orders created on or before: {when.FORMATS}."
    ),
    status: Optional[str] = typer.Option(None, help="child status to set"),
    memo: Optional[str] = typer.Option(None),
    label: list[str] = typer.Option([], help="label to add"),
    unlabel: list[str] = typer.Option([], help="label to remove"),
    carrier: Optional[str] = typer.Option(None),
    ship_date: Optional[date] = typer.Option(None, parser=when.day, metavar="DAY", help=f"Ship date to set: {when.FORMATS}."),
    shop: str = ShopOption,
    by: str = StaffOption,
) -> None:
    """Sets the same changes on many orders; prints one result per order."""
    order_filter = None
    if stage or created_from or created_to:
        order_filter = OrderFilter(
            stage=stage,
            created_from=created_from,
            created_to=created_to,
        )
    changes = OrderChanges(
        child_status=status, memo=memo, add_labels=label, remove_labels=unlabel, carrier=carrier,
        ship_date=ship_date,
    )
    _send(BulkUpdateOrders(shop_id=shop, issued_by=by, order_ids=order_ids or [], filter=order_filter, changes=changes))


@app.command()
def cancel(
    order_id: uuid.UUID,
    reason: str,
    restore_stock: bool = typer.Option(..., "--restore-stock/--keep-stock", help="release stock and cancel warehouse requests"),
    cancel_payment: bool = typer.Option(..., "--cancel-payment/--keep-payment", help="void, refund or cancel the payment request"),
    notify_customer: bool = typer.Option(..., "--notify/--no-notify", help="send the cancellation mail"),
    shop: str = ShopOption,
    by: str = StaffOption,
) -> None:
    """Cancels a whole unshipped order; each reversal is an explicit choice."""
    _send(CancelOrder(
        shop_id=shop, issued_by=by, order_id=order_id, reason=reason,
        restore_stock=restore_stock, cancel_payment=cancel_payment, notify_customer=notify_customer,
    ))


@app.command()
def edit(
    order_id: uuid.UUID,
    reason: str,
    adjust_stock: bool = typer.Option(..., "--adjust-stock/--keep-stock", help="whether stock follows the new quantities"),
    line: list[str] = typer.Option(
        [], "--line",
        help="a line change as JSON, e.g. '{\"sku\": \"A\", \"quantity\": 3}' or "
        "'{\"sku\": \"B\", \"quantity\": 1, \"name\": \"Gift box\", \"unit_price\": 330, \"tax_rate_percent\": 10}'; repeatable",
    ),
    shipping_fee: int | None = typer.Option(None, help="new shipping fee (minor units)"),
    payment_fee: int | None = typer.Option(None, help="new payment fee (minor units)"),
    points_used: int | None = typer.Option(None, help="new points used"),
    notify_customer: bool = typer.Option(False, "--notify/--no-notify", help="mail the customer the changed order"),
    shop: str = ShopOption,
    by: str = StaffOption,
) -> None:
    """Edits an order as one unit: lines, fees, points used; answered with the new total and balance, or every reason."""
    try:
        changes = [LineChange.model_validate_json(text) for text in line]
    except ValidationError as error:
        raise typer.BadParameter(str(error), param_hint="--line") from None
    _send(EditOrder(
        shop_id=shop, issued_by=by, order_id=order_id, reason=reason, lines=changes, shipping_fee=shipping_fee,
        payment_fee=payment_fee, points_used=points_used, adjust_stock=adjust_stock, notify_customer=notify_customer,
    ))


@app.command("return")
def return_items(
    order_id: uuid.UUID,
    reason: str,
    item: list[str] = typer.Option(
        ..., "--item", help="SKU=UNITS (delivery 0) or DELIVERY:SKU=UNITS, e.g. SKU-001=1 or 1:SKU-002=2; repeatable"
    ),
    restock: bool = typer.Option(..., "--restock/--no-restock", help="whether the units go back into stock"),
    notify_customer: bool = typer.Option(False, "--notify/--no-notify", help="mail the customer the changed order"),
    shop: str = ShopOption,
    by: str = StaffOption,
) -> None:
    """Books goods that came back after shipping: the total goes down by what they are worth, the payment is refunded
    (card) or a refund owed is flagged, points are taken back; refused when more comes back than shipped."""
    lines = []
    for value in item:
        where, _, units = value.rpartition("=")
        delivery, _, code = where.rpartition(":")
        try:
            lines.append(ReturnLine(delivery_index=int(delivery or 0), sku=code, quantity=int(units)))
        except (ValueError, ValidationError):
            raise typer.BadParameter(f"{value!r}: give SKU=UNITS or DELIVERY:SKU=UNITS", param_hint="--item") from None
    _send(ReturnItems(
        shop_id=shop, issued_by=by, order_id=order_id, reason=reason, lines=lines, restock=restock,
        notify_customer=notify_customer,
    ))


def _prefecture_fees(values: list[str]) -> dict[str, int]:
    fees: dict[str, int] = {}
    for value in values:
        name, _, amount = value.partition("=")
        try:
            fees[name.strip()] = int(amount)
        except ValueError:
            raise typer.BadParameter(f"{value!r}: give PREFECTURE=FEE, e.g. 北海道=1320", param_hint="--prefecture") from None
    return fees


@app.command("set-shipping-fees")
def set_shipping_fees(
    fee: int = typer.Option(..., help="shipping fee where no prefecture fee applies (minor units)"),
    prefecture: list[str] = typer.Option([], "--prefecture", help="a prefecture's own fee, e.g. 北海道=1320; repeatable"),
    free_from: Optional[int] = typer.Option(None, help="merchandise total from which shipping is free"),
    remote_island_surcharge: int = typer.Option(0, help="added for remote-island destinations, even when free"),
    shop: str = ShopOption,
    by: str = StaffOption,
) -> None:
    """Sets the shop's shipping fee table (used by merges given no fee); unknown prefectures are refused by name."""
    try:
        command = SetShippingFees(
            shop_id=shop, issued_by=by, fee=fee, by_prefecture=_prefecture_fees(prefecture), free_from=free_from,
            remote_island_surcharge=remote_island_surcharge,
        )
    except ValidationError as error:
        raise typer.BadParameter(str(error)) from None
    _send(command)


@app.command("shipping-fees")
def shipping_fees(shop: str = ShopOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """Shows the shop's shipping fee table."""
    table = get_json(Connection.from_environment(), "orders", "/api/orders/shipping-fees", shop_id=shop)
    rows = [{"prefecture": "(elsewhere)", "fee": table["fee"]}]
    rows += [{"prefecture": name, "fee": fee} for name, fee in table["by_prefecture"].items()]
    if as_json:
        print_rows([table], as_json=True)
        return
    print_rows(rows, title=f"shipping fees of {shop}")
    console.print(f"free from: {table['free_from'] if table['free_from'] is not None else 'never'} · "
                  f"remote-island surcharge: {table['remote_island_surcharge']}")



def _moved(text: str) -> MovedLine:
    """SKU=QTY or SKU=QTY@DELIVERY (delivery group index, 0 when left out)."""
    try:
        sku, rest = text.rsplit("=", 1)
        quantity, _, delivery = rest.partition("@")
        return MovedLine(sku=sku, quantity=int(quantity), delivery_index=int(delivery or 0))
    except (ValueError, ValidationError):
        raise typer.BadParameter(f"{text!r} is not SKU=QTY[@DELIVERY]", param_hint="--move") from None


@app.command()
def split(
    order_id: uuid.UUID,
    into: str = typer.Option(..., "--into", help="'delivery' (a new delivery group of this order) or 'order' (a new order)"),
    move: list[str] = typer.Option(..., "--move", help="units to move as SKU=QTY or SKU=QTY@DELIVERY; repeatable"),
    address_json: Optional[str] = typer.Option(None, "--address", help="where the moved units go, as JSON (default: the same address)"),
    requested_date: Optional[date] = typer.Option(
        None, parser=when.day, metavar="DAY", help=f"Delivery date for the moved units: {when.FORMATS}."
    ),
    shipping_fee: int = typer.Option(0, help="shipping fee of the new order (into=order)"),
    shop: str = ShopOption,
    by: str = StaffOption,
) -> None:
    """Moves unshipped units into a new delivery group or a new order; answered with the new totals, or every reason."""
    if into not in ("delivery", "order"):
        raise typer.BadParameter("use delivery or order", param_hint="--into")
    try:
        address = Address.model_validate_json(address_json) if address_json else None
    except ValidationError as error:
        raise typer.BadParameter(str(error), param_hint="--address") from None
    _send(SplitOrder(
        shop_id=shop, issued_by=by, order_id=order_id, into=into, lines=[_moved(text) for text in move],
        address=address, requested_date=requested_date, shipping_fee=shipping_fee,
    ))


@app.command()
def merge(
    order_ids: list[uuid.UUID],
    shipping_fee: Optional[int] = typer.Option(None, help="shipping fee of the merged order (default: the shop's fee table)"),
    shop: str = ShopOption,
    by: str = StaffOption,
) -> None:
    """Merges unshipped orders of one customer and destination into a new order; the sources are cancelled."""
    _send(MergeOrders(shop_id=shop, issued_by=by, order_ids=order_ids, shipping_fee=shipping_fee))
