"""Sanity checks a shop order must pass beyond its contract; each failure is a reason to reject."""

import re
import unicodedata
from collections.abc import Callable

from ordermesh_contracts import Address, ShopOrderSubmitted, is_known_currency

from .areas import is_remote_island, relay_area

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
    addresses = [("billing", order.billing_address)] + [(f"delivery {i}", d.address) for i, d in enumerate(order.deliveries)]
    return [problem for label, address in addresses for problem in address_problems(label, address, lookup)]


def address_problems(label: str, address: Address, lookup: PostalLookup) -> list[str]:
    """Why one Japanese address may be wrong (empty when it matches Japan Post's data or is abroad)."""
    if address.country != "JP":
        return []
    code = unicodedata.normalize("NFKC", address.postal_code).strip()
    if not _JAPANESE_POSTAL_CODE.match(code):
        return [f"{label}: postal code is not NNN-NNNN"]
    found = lookup(code.replace("-", ""))
    if found is None:
        return [f"{label}: postal code {code} does not exist"]
    prefecture, city = found
    given_prefecture = unicodedata.normalize("NFKC", address.prefecture).strip()
    given_city = unicodedata.normalize("NFKC", address.city).strip()
    if given_prefecture != prefecture:
        return [f"{label}: postal code {code} is in {prefecture}, not {given_prefecture}"]
    if not (given_city.startswith(city) or city.startswith(given_city)):
        return [f"{label}: postal code {code} is in {city}, not {given_city}"]
    return []


def new_address_checks(address: Address, label: str, lookup: PostalLookup) -> tuple[dict[str, str], list[str]]:
    """The checks a delivery address gets when staff send part of an order to it after intake (a split): the
    address flag if it may be wrong, and the tasks for a wrong address, a remote island or a relay area."""
    flags, tasks = {}, []
    if address_problems(label, address, lookup):
        flags["address"] = "error"
        tasks.append("address_may_be_wrong")
    if address.country == "JP" and is_remote_island(address.postal_code):
        tasks.append("remote_island")
    if address.country == "JP" and relay_area(address.postal_code):
        tasks.append("relay_area")
    return flags, tasks


def address_flag(order: ShopOrderSubmitted, lookup: PostalLookup) -> str:
    """'ok' when every Japanese address matches Japan Post's data, else 'error'."""
    return "error" if address_errors(order, lookup) else "ok"
