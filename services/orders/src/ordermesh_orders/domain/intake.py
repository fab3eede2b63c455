"""Sanity checks a shop order must pass beyond its contract; each failure is a reason to reject."""

import re

from ordermesh_contracts import ShopOrderSubmitted, is_known_currency

_JAPANESE_POSTAL_CODE = re.compile(r"^\d{3}-?\d{4}$")


def rejection_reasons(order: ShopOrderSubmitted) -> list[str]:
    """Every reason the order can't be accepted; empty when it can."""
    reasons: list[str] = []
    if not is_known_currency(order.currency):
        reasons.append(f"currency {order.currency} is not supported")
    if not order.deliveries:
        reasons.append("the order has no delivery")
    for index, delivery in enumerate(order.deliveries):
        if not delivery.lines:
            reasons.append(f"delivery {index} has no lines")
        for line_no, line in enumerate(delivery.lines):
            if line.quantity <= 0:
                reasons.append(f"delivery {index} line {line_no} ({line.sku}): quantity must be positive")
            if line.line_discount > line.unit_price * max(line.quantity, 0):
                reasons.append(f"delivery {index} line {line_no} ({line.sku}): discount exceeds the line amount")
    expected = expected_total(order)
    if order.charges.total != expected:
        reasons.append(f"total {order.charges.total} does not match lines, fees, discounts and points ({expected})")
    if order.charges.total < 0:
        reasons.append("total is negative")
    return reasons


def merchandise_total(order: ShopOrderSubmitted) -> int:
    """Sum of all lines after their discounts, tax-inclusive."""
    return sum(
        line.unit_price * line.quantity - line.line_discount for delivery in order.deliveries for line in delivery.lines
    )


def expected_total(order: ShopOrderSubmitted) -> int:
    """What the customer pays: merchandise plus fees, less the order discount and points used."""
    charges = order.charges
    return (
        merchandise_total(order)
        + charges.shipping_fee
        + charges.payment_fee
        - charges.order_discount
        - charges.points_used
    )


def address_flag(order: ShopOrderSubmitted) -> str:
    """'ok' when every Japanese address has a well-formed postal code, else 'error'."""
    addresses = [order.billing_address, *(d.address for d in order.deliveries)]
    for address in addresses:
        if address.country == "JP" and not _JAPANESE_POSTAL_CODE.match(address.postal_code):
            return "error"
    return "ok"
