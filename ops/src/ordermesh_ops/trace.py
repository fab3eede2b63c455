"""`ordermesh orders trace`: the whole life of one order across the five services, in time order."""

import uuid
from typing import Any, Optional

import typer

from .client import Connection, get_json, get_json_or_none
from .output import console, print_rows


def resolve_order(connection: Connection, text: str, shop_id: str | None = None) -> uuid.UUID:
    """The order id named by `text`: an order id, or the shop's order number (with the shop when several shops use it)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    found = get_json(connection, "orders", "/api/orders/by-number", external_order_no=text, shop_id=shop_id)["orders"]
    if not found:
        raise LookupError(f"no order numbered {text!r}" + (f" in shop {shop_id}" if shop_id else ""))
    if len(found) > 1:
        shops = ", ".join(sorted({f"{o['shop_id']} ({o['channel']})" for o in found}))
        raise LookupError(f"order number {text!r} is used by several shops or channels: {shops}; name the shop with --shop")
    return uuid.UUID(found[0]["order_id"])


def resolve_order_or_exit(connection: Connection, text: str, shop_id: str | None = None) -> uuid.UUID:
    """`resolve_order` for a command: an order that can't be named prints why and exits 1."""
    try:
        return resolve_order(connection, text, shop_id)
    except LookupError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None


def _entry(at: Any, service: str, what: str, detail: str = "") -> dict[str, str] | None:
    return {"at": str(at), "service": service, "what": what, "detail": detail} if at else None


def _orders(view: dict) -> list[dict | None]:
    entries = []
    for h in view.get("history", []):
        details = h.get("details") or {}
        text = ", ".join(f"{k}={v}" for k, v in details.items()) if isinstance(details, dict) else str(details)
        entries.append(_entry(h["at"], "orders", h["what"], f"by {h['actor']}" + (f": {text}" if text else "")))
    return entries


def _payments(view: dict | None) -> list[dict | None]:
    if not view:
        return []
    entries = []
    for call in view.get("ledger", []):
        entries.append(_entry(call["requested_at"], "payments", f"gateway {call['operation']} requested", f"{call['amount']} · {call.get('note') or ''}".strip(" ·")))
        result = call.get("reference") or call.get("reason") or ""
        entries.append(_entry(call.get("completed_at"), "payments", f"gateway {call['operation']} {call['status']}", str(result)))
    for received in view.get("received", []):
        entries.append(_entry(received["received_at"], "payments", f"payment received ({received['source']})", str(received["amount"])))
    if cancellation := view.get("cancellation"):
        entries.append(_entry(cancellation.get("cancelled_at") or cancellation.get("created_at"), "payments", "payment cancellation", str(cancellation.get("reason", ""))))
    return entries


def _shipping(allocations: list[dict], shipments: list[dict]) -> list[dict | None]:
    entries = []
    requested = {a["requested_at"] for a in allocations if a.get("requested_at")}
    for at in sorted(requested):
        units = ", ".join(f"{a['sku']}×{a['allocated']}" for a in allocations if a.get("requested_at") == at)
        coverage = next((a["coverage"] for a in allocations if a.get("requested_at") == at), "")
        entries.append(_entry(at, "shipping", f"stock allocated ({coverage})", units))
    for s in shipments:
        tracking = f"{s['carrier']} {s.get('tracking_number') or ''}".strip()
        entries.append(_entry(s.get("shipped_at"), "shipping", f"delivery {s['delivery_index']} shipped", tracking))
        entries.append(_entry(s.get("delivered_at"), "shipping", f"delivery {s['delivery_index']} delivered", tracking))
        if not s.get("shipped_at"):
            entries.append({"at": "", "service": "shipping", "what": f"delivery {s['delivery_index']} {s['status']}", "detail": s.get("last_error") or ""})
    return entries


def _points(view: dict | None) -> list[dict | None]:
    if not view:
        return []
    return [_entry(e["at"], "points", f"points {e['kind']}", str(e["points"])) for e in view.get("entries", [])]


def _mails(mails: list[dict]) -> list[dict | None]:
    entries = []
    for mail in mails:
        at = mail.get("sent_at") or mail.get("updated_at") or mail.get("created_at")
        entries.append(_entry(at, "notify", f"mail {mail.get('kind')} {mail.get('status')}", f"to {mail.get('recipient')}" + (f" · {mail['reason']}" if mail.get("reason") else "")))
    return entries


def order_story(connection: Connection, order_id: uuid.UUID) -> dict[str, Any]:
    """The order as orders sees it, and every service's records of it merged in time order."""
    view = get_json(connection, "orders", "/api/orders/order", order_id=str(order_id))
    payment = get_json_or_none(connection, "payments", "/api/payments/order", order_id=str(order_id))
    allocations = get_json(connection, "shipping", "/api/shipping/allocations", order_id=str(order_id))
    shipments = get_json(connection, "shipping", "/api/shipping/shipments", order_id=str(order_id))
    points = get_json_or_none(connection, "points", "/api/points/order", order_id=str(order_id))
    mails = get_json(connection, "notify", "/api/notify/mails", order_id=str(order_id))
    entries = [
        e
        for e in [*_orders(view), *_payments(payment), *_shipping(allocations, shipments), *_points(points), *_mails(mails)]
        if e is not None
    ]
    entries.sort(key=lambda e: (e["at"] == "", _sortable(e["at"])))
    return {"order": {k: view.get(k) for k in ("order_id", "shop_id", "external_order_no", "stage", "mode", "flags")}, "entries": entries}


def _sortable(at: str) -> str:
    """ISO times from five services: normalize the separator so a lexical sort is a time sort (all UTC)."""
    return at.replace("T", " ").replace("+00:00", "").replace("Z", "")


def trace(
    order: str = typer.Argument(..., help="order id or the shop's order number"),
    shop: Optional[str] = typer.Option(None, "--shop", help="the shop, when several use the order number"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Prints the whole life of an order across all five services in time order."""
    connection = Connection.from_environment()
    story = order_story(connection, resolve_order_or_exit(connection, order, shop))
    if as_json:
        print_rows([story], as_json=True)
        return
    o = story["order"]
    console.print(f"[bold]{o['external_order_no']}[/bold] {o['order_id']} · shop {o['shop_id']} · {o['stage']} ({o['mode']})")
    print_rows(story["entries"], title="story")
