"""Consumption tax per rate, as Japan's qualified-invoice rules (適格請求書) require: one pure function every service
uses for the order view, the mails, the CSV exports and the templates."""

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from .orders import Charges, DeliveryGroup

STANDARD_RATE_PERCENT = 10
"""Japan's standard rate; shipping and payment fees are taxed at it (never at the reduced rate)."""


class RateTotal(BaseModel):
    """What one tax rate of a document comes to: the tax-inclusive amount at that rate and the tax it includes."""

    model_config = ConfigDict(frozen=True)

    rate_percent: int = Field(ge=0, le=100, description="The tax rate, e.g. 10 (standard) or 8 (reduced).")
    subtotal: int = Field(description="Tax-inclusive amount at this rate in minor units (lines, fees, less its share of the order discount).")
    tax: int = Field(description="Tax included in `subtotal`, rounded down once for the rate (not per line).")


def tax_breakdown(deliveries: Iterable[DeliveryGroup], charges: Charges, currency: str = "JPY") -> list[RateTotal]:
    """The order's amounts per tax rate, highest rate first; rates with nothing at them are left out.

    - Lines count their amount after line discounts (a negative line booked to cancel units counts against its rate).
    - Shipping and payment fees are taxed at the standard rate for yen orders, else at the order's highest line rate.
    - The order discount is shared across the rates in proportion to their amounts (largest remainder, so the
      shares add up exactly); points used are a means of payment and reduce no rate's amount.
    - The tax of each rate is `subtotal × rate / (100 + rate)`, rounded toward zero once per rate per document.
    """
    amounts: dict[int, int] = {}
    for delivery in deliveries:
        for line in delivery.lines:
            amount = line.unit_price * line.quantity - line.line_discount
            amounts[line.tax_rate_percent] = amounts.get(line.tax_rate_percent, 0) + amount
    fees = charges.shipping_fee + charges.payment_fee
    if fees:
        fee_rate = STANDARD_RATE_PERCENT if currency == "JPY" or not amounts else max(amounts)
        amounts[fee_rate] = amounts.get(fee_rate, 0) + fees
    for rate, share in _shares(charges.order_discount, amounts).items():
        amounts[rate] -= share
    return [
        RateTotal(rate_percent=rate, subtotal=amount, tax=_included_tax(amount, rate))
        for rate, amount in sorted(amounts.items(), reverse=True)
        if amount != 0
    ]


def _shares(discount: int, amounts: dict[int, int]) -> dict[int, int]:
    base = {rate: amount for rate, amount in amounts.items() if amount > 0}
    whole = sum(base.values())
    if not discount or not whole:
        return {}
    shares = {rate: discount * amount // whole for rate, amount in base.items()}
    remainders = sorted(base, key=lambda rate: (-(discount * base[rate] % whole), -rate))
    for rate in remainders[: discount - sum(shares.values())]:
        shares[rate] += 1
    return shares


def _included_tax(amount: int, rate: int) -> int:
    tax = abs(amount) * rate // (100 + rate)
    return tax if amount >= 0 else -tax
