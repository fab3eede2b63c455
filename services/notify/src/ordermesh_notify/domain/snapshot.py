"""The order as notify keeps it for templates (lines, charges, totals), and what the order-changed mail says."""

from collections.abc import Iterable, Mapping
from typing import Any

from ordermesh_contracts import Charges, DeliveryGroup, LineDiff, tax_breakdown


def mail_lines(deliveries: Iterable[DeliveryGroup]) -> list[dict[str, Any]]:
    """The order's lines as templates show them; a negative line is a cancelled quantity, a 0 line a returned one."""
    return [
        {
            "sku": line.sku,
            "name": line.name,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "amount": line.unit_price * line.quantity - line.line_discount,
            "tax_rate_percent": line.tax_rate_percent,
            "state": "cancelled" if line.quantity < 0 else "returned" if line.quantity == 0 else "ordered",
        }
        for delivery in deliveries
        for line in delivery.lines
    ]


def mail_deliveries(deliveries: Iterable[DeliveryGroup]) -> list[dict[str, Any]]:
    """Each delivery group's recipient and address, in order (a mail about one delivery says which it is)."""
    return [
        {
            "name": delivery.address.name,
            "postal_code": delivery.address.postal_code,
            "prefecture": delivery.address.prefecture,
            "city": delivery.address.city,
            "line1": delivery.address.line1,
            "line2": delivery.address.line2 or "",
        }
        for delivery in deliveries
    ]


def order_summary(
    *, currency: str, payment_method: str, deliveries: Iterable[DeliveryGroup], charges: Charges, edit_no: int = 0
) -> dict[str, Any]:
    """What notify keeps of an order for later mails; `edit_no` says which edit it reflects (0: as accepted)."""
    deliveries = list(deliveries)
    lines = mail_lines(deliveries)
    return {
        "lines": lines,
        "deliveries": mail_deliveries(deliveries),
        "total": charges.total,
        "shipping_fee": charges.shipping_fee,
        "payment_fee": charges.payment_fee,
        "order_discount": charges.order_discount,
        "points_used": charges.points_used,
        "tax_breakdown": [rate.model_dump() for rate in tax_breakdown(deliveries, charges, currency)],
        "currency": currency,
        "payment_method": payment_method,
        "names": {line["sku"]: line["name"] for line in lines},
        "edit_no": edit_no,
    }


def change_descriptions(changes: Iterable[LineDiff], names: Mapping[str, str]) -> list[str]:
    """One line per sku whose quantity an edit changed, e.g. "宇治抹茶 特上 40g: 2 → 1" (discount-only changes show in
    the lines and totals instead)."""
    return [
        f"{names.get(diff.sku, diff.sku)}: {diff.previous_quantity} → {diff.quantity}"
        for diff in changes
        if diff.previous_quantity != diff.quantity
    ]


def order_changed_variables(
    summary: Mapping[str, Any], changes: Iterable[LineDiff], names: Mapping[str, str], *, previous_total: int, balance: int
) -> dict[str, Any]:
    """Variables of the order-changed mail: the changes (named from `names`, which still knows removed skus), the
    lines, deliveries and totals after the edit, and the balance (positive: still due from the customer; negative: a
    refund owed)."""
    kept = ("lines", "total", "shipping_fee", "payment_fee", "order_discount", "points_used")
    return {
        **{key: summary[key] for key in kept},
        **{key: summary[key] for key in ("deliveries", "currency", "payment_method") if key in summary},
        "tax_breakdown": summary.get("tax_breakdown", []),
        "changes": change_descriptions(changes, names),
        "previous_total": previous_total,
        "balance": balance,
    }
