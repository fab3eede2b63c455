"""`ordermesh shipping …`: staff commands and reads of the shipping service."""

import asyncio
import base64
from datetime import date
from pathlib import Path
from uuid import UUID

import typer

from ordermesh_contracts import (
    ChangeDeliveryMethod,
    ExportLabels,
    ImportStock,
    ImportTrackingCsv,
    SetShopShipping,
    Shipper,
    topics,
)

from . import client, output, when

app = typer.Typer(help="The shipping service.", no_args_is_help=True)


def _send(command) -> dict:
    return asyncio.run(client.send_command(client.Connection.from_environment(), topics.SHIPPING_COMMANDS, command))


@app.command("stock")
def stock(sku: str = typer.Option(None, help="One sku; all when left out."), as_json: bool = typer.Option(False, "--json")) -> None:
    """Stock per sku and warehouse: on hand, allocated, available."""
    rows = client.get_json(client.Connection.from_environment(), "shipping", "/api/shipping/stock", sku=sku)
    output.print_rows(rows, title="stock", as_json=as_json)


@app.command("shipments")
def shipments(order_id: UUID, as_json: bool = typer.Option(False, "--json")) -> None:
    """An order's shipments with their state and tracking number."""
    rows = client.get_json(client.Connection.from_environment(), "shipping", "/api/shipping/shipments", order_id=str(order_id))
    output.print_rows(rows, title="shipments", as_json=as_json)


@app.command("allocations")
def allocations(
    order: UUID = typer.Option(None, help="One order's allocations."),
    sku: str = typer.Option(None, help="Every order holding this sku."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Units set aside per order and sku, with the order's coverage (full, partial, none), oldest first."""
    rows = client.get_json(
        client.Connection.from_environment(), "shipping", "/api/shipping/allocations",
        order_id=str(order) if order else None, sku=sku,
    )
    output.print_rows(rows, title="allocations", as_json=as_json)


@app.command("import-stock")
def import_stock(
    csv_file: Path = typer.Argument(..., exists=True, help="CSV with a header: sku,warehouse,on_hand[,cool_type]."),
    shop: str = typer.Option(..., help="Shop the import is made for."),
    allow_new_skus: bool = typer.Option(False, help="Create skus shipping has never seen."),
    issued_by: str = typer.Option("cli", help="Who runs it."),
) -> None:
    """Sets stock levels from a CSV file, all or nothing; orders waiting for the stock are allocated."""
    command = ImportStock(
        shop_id=shop, issued_by=issued_by, csv=csv_file.read_text(encoding="utf-8-sig"), allow_new_skus=allow_new_skus
    )
    raise typer.Exit(output.print_reply(_send(command)))


@app.command("change-method")
def change_method(
    order_id: UUID,
    shop: str = typer.Option(..., help="Shop id."),
    delivery: int = typer.Option(0, help="Which delivery group of the order."),
    carrier: str = typer.Option(None, help="New carrier, e.g. sagawa; kept when left out."),
    time_slot: str = typer.Option(None, help="New time slot, e.g. 14-16, or 'any' for none; kept when left out."),
    issued_by: str = typer.Option("cli", help="Who runs it."),
) -> None:
    """Changes a delivery group's carrier or time slot before it reaches the warehouse; a group held by a failed label
    check is requested once the new method passes (refused with the reasons when it fails too). To ship as it is,
    confirm the check instead: 'ordermesh orders close-task' on its label-check task."""
    command = ChangeDeliveryMethod(
        shop_id=shop, issued_by=issued_by, order_id=order_id, delivery_index=delivery, carrier=carrier, time_slot=time_slot
    )
    raise typer.Exit(output.print_reply(_send(command)))


@app.command("export-labels")
def export_labels(
    out: Path = typer.Argument(..., help="Where to write the B2 Cloud CSV (cp932)."),
    shop: str = typer.Option(..., help="The shop whose shipments are labelled."),
    shipment: list[UUID] = typer.Option(None, help="Shipment ids; every requested Yamato shipment when left out."),
    issued_by: str = typer.Option("cli", help="Who runs it."),
) -> None:
    """Writes Yamato B2 Cloud label data for shipments to a file."""
    reply = _send(ExportLabels(shop_id=shop, issued_by=issued_by, shipment_ids=shipment or None))
    if reply["type"] == "CommandAccepted":
        out.write_bytes(base64.b64decode(reply["details"].pop("content_base64")))
        output.console.print(f"wrote {reply['details']['shipments']} label(s) to {out}")
    raise typer.Exit(output.print_reply(reply))


@app.command("import-tracking")
def import_tracking(
    csv_file: Path = typer.Argument(..., exists=True, help="The carrier's issued-labels CSV (cp932 or UTF-8)."),
    shop: str = typer.Option(..., help="The shop whose shipments it covers."),
    carrier: str = typer.Option("yamato", help="Carrier that issued the labels."),
    issued_by: str = typer.Option("cli", help="Who runs it."),
) -> None:
    """Imports tracking numbers from an issued-labels file; each line applied or rejected with its reason."""
    raw = csv_file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp932")
    raise typer.Exit(output.print_reply(_send(ImportTrackingCsv(shop_id=shop, issued_by=issued_by, csv=text, carrier=carrier))))


@app.command("set-shop")
def set_shop(
    shop: str = typer.Option(..., help="The shop whose shipping settings change."),
    time_zone: str = typer.Option(None, help="IANA time zone, e.g. Asia/Tokyo."),
    cutoff: str = typer.Option(None, help="Same-day shipping cutoff, HH:MM local time."),
    closed_weekday: list[int] = typer.Option(None, help="A weekday the warehouse doesn't ship (Monday = 0); repeat."),
    no_closed_weekdays: bool = typer.Option(False, help="Ship every weekday (clears the closed weekdays)."),
    closure: list[date] = typer.Option(
        None, parser=when.day, metavar="DAY", help=f"An extra closed day ({when.FORMATS}); repeat. Replaces the closures."
    ),
    no_closures: bool = typer.Option(False, help="Clear the extra closed days."),
    warehouse_prefecture: str = typer.Option(None, help="Prefecture parcels leave from, e.g. 東京都."),
    shipper_name: str = typer.Option(None, help="Sender name on labels (the shipper block needs name, phone, postal code, address)."),
    shipper_phone: str = typer.Option(None, help="Sender phone number."),
    shipper_postal_code: str = typer.Option(None, help="Sender postal code."),
    shipper_address: str = typer.Option(None, help="Sender address."),
    shipper_building: str = typer.Option("", help="Sender building, floor, room."),
    issued_by: str = typer.Option("cli", help="Who runs it."),
) -> None:
    """Sets the shop's shipping calendar, warehouse prefecture and shipper block; options left out keep their value."""
    shipper_fields = (shipper_name, shipper_phone, shipper_postal_code, shipper_address)
    if any(shipper_fields) and not all(shipper_fields):
        raise typer.BadParameter("the shipper block needs --shipper-name, --shipper-phone, --shipper-postal-code and --shipper-address")
    closures = [] if no_closures else list(closure) if closure else None
    command = SetShopShipping(
        shop_id=shop,
        issued_by=issued_by,
        time_zone=time_zone,
        cutoff=cutoff,
        closed_weekdays=[] if no_closed_weekdays else closed_weekday or None,
        closures=closures,
        warehouse_prefecture=warehouse_prefecture,
        shipper=Shipper(
            name=shipper_name, phone=shipper_phone, postal_code=shipper_postal_code, address=shipper_address,
            building=shipper_building,
        )
        if all(shipper_fields)
        else None,
    )
    raise typer.Exit(output.print_reply(_send(command)))
