"""Sanity checks a shop order must pass beyond its contract; each failure is a reason to reject."""

import re
import unicodedata
from collections.abc import Callable

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


PostalLookup = Callable[[str], tuple[str, str] | None]
"""Japan Post's data: a 7-digit postal code → (prefecture, city), or None for an unknown code."""


def address_errors(order: ShopOrderSubmitted, lookup: PostalLookup) -> list[str]:
    """Why the order's Japanese addresses may be wrong: malformed or unknown postal code, or a code that
    belongs to another prefecture or city. Text is NFKC-normalised first (full-width digits and hyphens)."""
    errors = []
    addresses = [("billing", order.billing_address)] + [(f"delivery {i}", d.address) for i, d in enumerate(order.deliveries)]
    for label, address in addresses:
        if address.country != "JP":
            continue
        code = unicodedata.normalize("NFKC", address.postal_code).strip()
        if not _JAPANESE_POSTAL_CODE.match(code):
            errors.append(f"{label}: postal code is not NNN-NNNN")
            continue
        found = lookup(code.replace("-", ""))
        if found is None:
            errors.append(f"{label}: postal code {code} does not exist")
            continue
        prefecture, city = found
        given_prefecture = unicodedata.normalize("NFKC", address.prefecture).strip()
        given_city = unicodedata.normalize("NFKC", address.city).strip()
        if given_prefecture != prefecture:
            errors.append(f"{label}: postal code {code} is in {prefecture}, not {given_prefecture}")
        elif not (given_city.startswith(city) or city.startswith(given_city)):
            errors.append(f"{label}: postal code {code} is in {city}, not {given_city}")
    return errors


def address_flag(order: ShopOrderSubmitted, lookup: PostalLookup) -> str:
    """'ok' when every Japanese address matches Japan Post's data, else 'error'."""
    return "error" if address_errors(order, lookup) else "ok"
