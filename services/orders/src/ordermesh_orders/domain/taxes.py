"""The tax per rate of a stored order, for staff views and exports (the computation itself is the contracts' one)."""

from typing import Any

from ordermesh_contracts import Charges, DeliveryGroup, tax_breakdown


def tax_of(contents: dict[str, Any]) -> list[dict[str, int]]:
    """Per-rate amounts and tax of an order as stored (its accepted or last edited snapshot), highest rate first."""
    deliveries = [DeliveryGroup.model_validate(delivery) for delivery in contents.get("deliveries", [])]
    charges = Charges.model_validate(contents["charges"])
    return [rate.model_dump() for rate in tax_breakdown(deliveries, charges, contents.get("currency", "JPY"))]


def export_columns(rates: set[int]) -> list[str]:
    """The per-rate columns of an orders export: 10% and 8% always, then any other rate found, highest first."""
    return [f"{kind}_{rate}" for rate in sorted(rates | {10, 8}, reverse=True) for kind in ("subtotal", "tax")]


def export_row(order: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """One order as a row of the export: its identity, stage, charges and the amount and tax of each rate."""
    contents = order["contents"]
    charges = contents["charges"]
    row = {
        "order_id": order["order_id"],
        "external_order_no": order["external_order_no"],
        "channel": order["channel"],
        "created_at": order["created_at"].isoformat(),
        "stage": order["stage"],
        "payment_method": order["payment_method"],
        "currency": order["currency"],
        "total": order["total"],
        **{key: charges.get(key, 0) for key in ("shipping_fee", "payment_fee", "order_discount", "points_used")},
        **{column: 0 for column in columns},
    }
    for rate in tax_of(contents):
        row[f"subtotal_{rate['rate_percent']}"] = rate["subtotal"]
        row[f"tax_{rate['rate_percent']}"] = rate["tax"]
    return row
