"""`ordermesh orders export`: the shop's orders as CSV, with the amount and tax of each rate."""

import sys
from datetime import date
from pathlib import Path
from typing import Optional

import httpx
import typer

from .client import Connection
from .orders import app


@app.command("export")
def export_orders(
    shop: str = typer.Option(..., "--shop", help="The shop whose orders to export."),
    created_from: Optional[str] = typer.Option(None, "--from", help="First day (YYYY-MM-DD, Tokyo), included."),
    created_to: Optional[str] = typer.Option(None, "--to", help="Last day (YYYY-MM-DD, Tokyo), included."),
    out: Optional[Path] = typer.Option(None, "--out", help="File to write (default: standard output)."),
) -> None:
    """Exports the shop's orders as CSV: charges, then subtotal_<rate> and tax_<rate> per tax rate (10%, 8%, …)."""
    for value in (created_from, created_to):
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None
    connection = Connection.from_environment()
    base = connection.service_urls.get("orders")
    if not base:
        raise SystemExit("no address for orders: set ORDERMESH_ORDERS_URL or run `make run`")
    params = {k: v for k, v in {"shop_id": shop, "created_from": created_from, "created_to": created_to}.items() if v}
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
