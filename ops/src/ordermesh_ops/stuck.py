"""`ordermesh orders stuck`: orders that stopped moving, and what each waits for (which flag, which service)."""

from typing import Any, Optional

import typer

from .client import Connection, get_json
from .output import console, print_rows
from .timespec import parse_duration


def stuck_orders(connection: Connection, older_than_seconds: int, shop_id: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Unfinished orders that have not moved for that long, oldest first, from the orders service."""
    answer = get_json(connection, "orders", "/api/orders/stuck", older_than_seconds=older_than_seconds, shop_id=shop_id, limit=limit)
    return answer["orders"]


def describe_waits(order: dict[str, Any]) -> str:
    """`flag=value (owner: what)`, joined."""
    return "; ".join(f"{w['flag']}={w['value']} ({w['owner']}: {w['what']})" for w in order["waiting_for"]) or "nothing (should move)"


def stuck(
    older_than: str = typer.Option("30m", "--older-than", help="no progress for this long: 90s, 30m, 2h, 1d"),
    shop: Optional[str] = typer.Option(None, "--shop"),
    limit: int = typer.Option(500),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Lists orders with no progress for that long at any stage, saying what each waits for and from whom."""
    try:
        seconds = int(parse_duration(older_than).total_seconds())
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--older-than") from None
    orders = stuck_orders(Connection.from_environment(), seconds, shop, limit)
    if as_json:
        print_rows(orders, as_json=True)
        return
    console.print(f"{len(orders)} orders without progress for {older_than}")
    print_rows(
        [
            {"order": o["order_id"], "number": o["external_order_no"], "shop": o["shop_id"], "stage": o["stage"],
             "idle": f"{o['idle_seconds'] // 60} min", "waiting for": describe_waits(o)}
            for o in orders
        ],
        title="stuck orders",
    )
