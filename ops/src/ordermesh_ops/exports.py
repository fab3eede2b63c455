"""`ordermesh orders export`: the shop's orders as CSV, with the amount and tax of each rate."""

import sys
from datetime import date
from pathlib import Path
from typing import Optional

import httpx
import typer

from . import when
from .client import Connection
from .orders import app


@app.command("export")
def export_orders(
    shop: str = typer.Option(..., "--shop", help="The shop whose orders to export."),
    created_from: Optional[date] = typer.Option(
        None, "--from", parser=when.day, metavar="DAY", help=f"First day (Tokyo), included: {when.FORMATS}."
    ),
    created_to: Optional[date] = typer.Option(
        None, "--to", parser=when.day, metavar="DAY", help=f"Last day (Tokyo), included: {when.FORMATS}."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="File to write (default: standard output)."),
) -> None:
    """Exports the shop's orders as CSV: charges, then subtotal_<rate> and tax_<rate> per tax rate (10%, 8%, …)."""
    connection = Connection.from_environment()
    base = connection.service_urls.get("orders")
    if not base:
        raise SystemExit("no address for orders: set ORDERMESH_ORDERS_URL or run `make run`")
    days = {"created_from": created_from, "created_to": created_to}
    params = {"shop_id": shop, **{key: day.isoformat() for key, day in days.items() if day is not None}}
    response = httpx.get(
        f"{base}/api/orders/export.csv", params=params, headers={"Authorization": f"Bearer {connection.token}"}, timeout=60
    )
    if response.status_code >= 400:
        raise SystemExit(f"orders answered {response.status_code}: {response.text}")
    if out is None:
        sys.stdout.write(response.content.decode("utf-8-sig"))
    else:
        out.write_bytes(response.content)
        typer.echo(f"{out}: {response.text.count(chr(10)) - 1} orders")
