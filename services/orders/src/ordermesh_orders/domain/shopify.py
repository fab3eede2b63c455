"""Shopify `orders/create` webhooks: verifying their signature and mapping the order to `ShopOrderSubmitted`."""

import base64
import hashlib
import hmac
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ordermesh_contracts import MINOR_UNITS, PaymentMethod, ShopOrderSubmitted
from pydantic import ValidationError

GATEWAY_METHODS: dict[str, PaymentMethod] = {
    "shopify_payments": PaymentMethod.PLATFORM,
    "stripe": PaymentMethod.PLATFORM,
    "paypal": PaymentMethod.PLATFORM,
    "cash on delivery (cod)": PaymentMethod.CASH_ON_DELIVERY,
    "cash_on_delivery": PaymentMethod.CASH_ON_DELIVERY,
    "bank deposit": PaymentMethod.BANK_TRANSFER,
    "bank_deposit": PaymentMethod.BANK_TRANSFER,
    "konbini": PaymentMethod.CONVENIENCE_STORE,
}
"""Shopify payment gateway names → ordermesh payment methods. Shopify takes the money of its online gateways itself
(ordermesh holds no card token for them): those orders are paid on the platform; manual gateways are collected here."""

PAID_ON_SHOPIFY = "paid"
"""A `financial_status` meaning Shopify already holds the money, whatever the gateway."""


def payment_method(order: dict[str, Any]) -> PaymentMethod | None:
    """The ordermesh payment method of a Shopify order: `platform` once Shopify has the money, else by its gateway
    (None for a gateway ordermesh does not know)."""
    if order.get("financial_status") == PAID_ON_SHOPIFY:
        return PaymentMethod.PLATFORM
    gateways = [name.lower() for name in order.get("payment_gateway_names") or []]
    return next((GATEWAY_METHODS[g] for g in gateways if g in GATEWAY_METHODS), None)


class ShopifyMappingError(ValueError):
    """The webhook's order can't be expressed as a ShopOrderSubmitted; the reasons say why."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def signature_is_valid(secret: str, raw_body: bytes, header_value: str) -> bool:
    """Checks `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the raw body with the shop's secret, compared in constant time."""
    expected = base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, header_value.encode())


def _minor(amount: Any, currency: str, what: str, reasons: list[str]) -> int:
    try:
        value = Decimal(str(amount)) * (10 ** MINOR_UNITS.get(currency, 2))
    except InvalidOperation:
        reasons.append(f"{what}: {amount!r} is not an amount")
        return 0
    if value != value.to_integral_value():
        reasons.append(f"{what}: {amount} has more decimals than {currency} allows")
    return int(value)


def _tax_percent(tax_lines: list[dict[str, Any]]) -> int:
    rates = [Decimal(str(line.get("rate", 0))) for line in tax_lines]
    return int(max(rates, default=Decimal(0)) * 100)


def _address(raw: dict[str, Any] | None, what: str, reasons: list[str]) -> dict[str, Any] | None:
    if not raw:
        reasons.append(f"{what} is missing")
        return None
    name = raw.get("name") or " ".join(p for p in (raw.get("last_name"), raw.get("first_name")) if p)
    return {
        "name": name,
        "postal_code": raw.get("zip") or "",
        "country": raw.get("country_code") or "JP",
        "prefecture": raw.get("province") or "",
        "city": raw.get("city") or "",
        "line1": raw.get("address1") or "",
        "line2": raw.get("address2"),
        "phone": raw.get("phone"),
    }


def map_order(shop_id: str, order: dict[str, Any]) -> ShopOrderSubmitted:
    """Maps a Shopify order (webhook JSON, ids may exceed 2^53, money as strings) to the intake contract.

    Shopify prices are taken as tax-inclusive (the shop must have `taxes_included`); line discounts
    come from each line's discount allocations; shipping is the sum of the shipping lines after their discounts.
    """
    reasons: list[str] = []
    currency = order.get("currency") or ""
    if not order.get("taxes_included", False):
        reasons.append("prices must be tax-inclusive (taxes_included is false)")
    method = payment_method(order)
    if method is None:
        gateways = [name.lower() for name in order.get("payment_gateway_names") or []]
        reasons.append(f"unknown payment gateway {gateways!r}")
    lines = []
    for index, item in enumerate(order.get("line_items") or []):
        what = f"line_items[{index}]"
        discount = sum(_minor(a.get("amount"), currency, f"{what} discount", reasons) for a in item.get("discount_allocations") or [])
        lines.append(
            {
                "sku": item.get("sku") or f"variant-{item.get('variant_id')}",
                "name": item.get("name") or item.get("title") or "",
                "unit_price": _minor(item.get("price"), currency, f"{what} price", reasons),
                "quantity": item.get("quantity", 0),
                "tax_rate_percent": _tax_percent(item.get("tax_lines") or []),
                "line_discount": discount,
            }
        )
    shipping_fee = sum(
        _minor(line.get("discounted_price", line.get("price")), currency, "shipping_lines", reasons)
        for line in order.get("shipping_lines") or []
    )
    carrier = "yamato" if any("ヤマト" in (line.get("title") or "") or "yamato" in (line.get("title") or "").lower()
                              for line in order.get("shipping_lines") or []) else None
    customer = order.get("customer") or {}
    billing = _address(order.get("billing_address"), "billing_address", reasons)
    shipping = _address(order.get("shipping_address") or order.get("billing_address"), "shipping_address", reasons)
    member_since = customer.get("created_at")
    raw = {
        "shop_id": shop_id,
        "channel": "shopify",
        "external_order_no": str(order.get("id", "")),
        "ordered_at": order.get("created_at"),
        "currency": currency,
        "customer": {
            "customer_id": str(customer.get("id") or f"guest-{order.get('id')}"),
            "name": " ".join(p for p in (customer.get("last_name"), customer.get("first_name")) if p)
            or (billing or {}).get("name")
            or "(no name)",
            "email": order.get("email") or customer.get("email"),
            "phone": customer.get("phone") or order.get("phone"),
            "member_since": datetime.fromisoformat(member_since).date().isoformat()
            if member_since and customer.get("state") == "enabled"
            else None,
        },
        "billing_address": billing,
        "deliveries": [{"address": shipping, "carrier": carrier, "lines": lines}],
        "charges": {
            "shipping_fee": shipping_fee,
            "order_discount": 0,
            "total": _minor(order.get("total_price"), currency, "total_price", reasons),
        },
        "payment": {"method": method.value if method else PaymentMethod.PLATFORM.value},
        "remarks": order.get("note") or None,
    }
    if reasons:
        raise ShopifyMappingError(reasons)
    try:
        return ShopOrderSubmitted.model_validate(raw)
    except ValidationError as error:
        raise ShopifyMappingError(
            [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_input=False, include_url=False)]
        ) from None
