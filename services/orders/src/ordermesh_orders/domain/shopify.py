"""Shopify `orders/create` webhooks: verifying their signature and mapping the order to `ShopOrderSubmitted`."""

import base64
import hashlib
import hmac
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ordermesh_contracts import MAX_MINOR_UNITS, MINOR_UNITS, PaymentMethod, ShopOrderSubmitted
from pydantic import EmailStr, TypeAdapter, ValidationError

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

_EMAIL = TypeAdapter(EmailStr)

HELD_BY_SHOPIFY = frozenset({"paid", "partially_paid", "authorized", "partially_refunded"})
"""`financial_status` values meaning Shopify holds (or held) the money or its authorization, whatever the gateway."""

NOT_COLLECTED = frozenset({"voided", "refunded", "expired"})
"""`financial_status` values meaning no money is held for the order: staff must look before it ships."""


def payment_method(order: dict[str, Any]) -> PaymentMethod | None:
    """The ordermesh payment method of a Shopify order: `platform` once Shopify holds the money, else by its gateway
    (None for a gateway ordermesh does not know whose money Shopify does not hold)."""
    if _financial_status(order) in HELD_BY_SHOPIFY:
        return PaymentMethod.PLATFORM
    return next((GATEWAY_METHODS[g] for g in _gateways(order) if g in GATEWAY_METHODS), None)


def _financial_status(order: dict[str, Any]) -> str | None:
    status = order.get("financial_status")
    return status if isinstance(status, str) else None


def _gateways(order: dict[str, Any]) -> list[str]:
    names = order.get("payment_gateway_names")
    return [str(name).lower() for name in names if isinstance(name, str)] if isinstance(names, list) else []


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
        value = Decimal(str(amount if amount is not None else 0)) * (10 ** MINOR_UNITS.get(currency, 2))
    except ArithmeticError:  # InvalidOperation, or Overflow for 1e999999999
        reasons.append(f"{what}: {str(amount)[:40]!r} is not an amount")
        return 0
    if not value.is_finite():
        reasons.append(f"{what}: {amount!r} is not an amount")
        return 0
    if abs(value) > MAX_MINOR_UNITS:
        reasons.append(f"{what}: {str(amount)[:40]} is beyond the largest amount ordermesh accepts")
        return 0
    if value != value.to_integral_value():
        reasons.append(f"{what}: {amount} has more decimals than {currency} allows")
    return int(value)


def _list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any, limit: int) -> str:
    """A text field as ordermesh can store it: no NUL characters or lone surrogates, within its length."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    clean = str(value).encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return clean.strip()[:limit]


def _tax_percent(tax_lines: list[dict[str, Any]], what: str, checks: list[str]) -> int:
    try:
        rate = max((Decimal(str(line.get("rate", 0))) for line in tax_lines), default=Decimal(0)) * 100
    except ArithmeticError:  # InvalidOperation, or Overflow for 1e999999999
        checks.append(f"{what}: tax rate unreadable, recorded as 0%")
        return 0
    if not rate.is_finite() or not 0 <= rate <= 100:
        checks.append(f"{what}: tax rate {rate}% recorded as 0%")
        return 0
    whole = int(rate.to_integral_value(ROUND_HALF_UP))
    if whole != rate:
        checks.append(f"{what}: tax rate {rate.normalize()}% recorded as {whole}%")
    return whole


def _taxes(tax_lines: list[dict[str, Any]], currency: str, what: str, reasons: list[str]) -> int:
    return sum(_minor(line.get("price"), currency, f"{what} tax", reasons) for line in tax_lines)


def _address(raw: Any, what: str, checks: list[str]) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or not raw:
        return None
    name = raw.get("name") or " ".join(str(p) for p in (raw.get("last_name"), raw.get("first_name")) if p)
    country = raw.get("country_code") if isinstance(raw.get("country_code"), str) else None
    address = {
        "name": _text(name, 200),
        "postal_code": _text(raw.get("zip"), 16),
        "country": country.upper() if country and len(country) == 2 else "JP",
        "prefecture": _text(raw.get("province") or raw.get("country"), 64),
        "city": _text(raw.get("city"), 128),
        "line1": _text(raw.get("address1"), 256),
        "line2": _text(raw.get("address2"), 256) or None,
        "phone": _text(raw.get("phone"), 32) or None,
    }
    missing = [field for field in ("name", "postal_code", "prefecture", "city", "line1") if len(address[field]) < (3 if field == "postal_code" else 1)]
    if missing:
        checks.append(f"{what}: {', '.join(missing)} missing")
        for field in missing:
            address[field] = "000" if field == "postal_code" else "(missing)"
    return address


def is_an_order(body: Any) -> list[str]:
    """Why a webhook body is not a Shopify order ordermesh can take in (empty when it is one): a JSON object with an
    id, at least one line item and a known ISO 4217 currency."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    reasons = []
    if not isinstance(body.get("id"), (int, str)) or isinstance(body.get("id"), bool) or str(body.get("id")) == "":
        reasons.append("id is missing")
    if not _list(body.get("line_items")):
        reasons.append("line_items is missing or empty")
    if not isinstance(body.get("currency"), str) or body["currency"] not in MINOR_UNITS:
        reasons.append(f"currency {body.get('currency')!r} is not an ISO 4217 currency")
    return reasons


def map_order(shop_id: str, order: Any) -> ShopOrderSubmitted:
    """Maps a Shopify order (webhook JSON, ids may exceed 2^53, money as strings) to the intake contract.

    Shopify sends prices with or without tax (`taxes_included`): without, each line's and shipping line's tax lines
    are added so ordermesh keeps tax-inclusive amounts (a unit price that the tax does not divide evenly is rounded
    up and the rounding kept as line discount, so the line's amount is exact). Any currency with its ISO 4217 minor
    unit. Payment: by gateway, or `platform` when Shopify holds the money. What can't be expressed exactly (an
    unknown gateway whose money Shopify does not hold, a voided payment, an order Shopify already cancelled, a
    total that does not add up, a missing address) goes to `checks_for_staff` instead of refusing the order.
    Raises `ShopifyMappingError` only for a body that is not an order.
    """
    if reasons := is_an_order(order):
        raise ShopifyMappingError(reasons)
    reasons: list[str] = []
    checks: list[str] = []
    currency = order["currency"]
    taxes_included = order.get("taxes_included", False) is True
    lines = [_line(index, item, currency, taxes_included, reasons, checks) for index, item in enumerate(_list(order["line_items"]))]
    shipping_fee = sum(
        _minor(line.get("discounted_price", line.get("price")), currency, "shipping_lines", reasons)
        + (0 if taxes_included else _taxes(_list(line.get("tax_lines")), currency, "shipping_lines", reasons))
        for line in _list(order.get("shipping_lines"))
    )
    merchandise = sum(line["unit_price"] * line["quantity"] - line["line_discount"] for line in lines)
    computed = merchandise + shipping_fee
    total = _minor(order.get("total_price"), currency, "total_price", reasons)
    order_discount = 0
    if total != computed:
        shown = _shown(total, currency), _shown(computed, currency)
        if 0 <= total < computed:
            order_discount = computed - total
            checks.append(f"Shopify's total {shown[0]} is less than its lines and shipping ({shown[1]}): the difference is taken as an order discount")
        else:
            total = computed
            checks.append(f"Shopify's total {shown[0]} does not match its lines and shipping ({shown[1]}): taken in at {shown[1]}")
    if reasons:
        raise ShopifyMappingError(reasons)
    method = _payment(order, checks)
    if order.get("cancelled_at"):
        checks.append(f"Shopify reports the order cancelled at {order['cancelled_at']} (reason: {order.get('cancel_reason')}): cancel it here too")
    billing = _address(order.get("billing_address"), "billing address", checks)
    shipping = _address(order.get("shipping_address"), "shipping address", checks)
    if billing is None and shipping is None:
        checks.append("no billing or shipping address")
        billing = _address({"name": "(missing)"}, "address", [])
    billing, shipping = billing or shipping, shipping or billing
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
    raw = {
        "shop_id": shop_id,
        "channel": "shopify",
        "external_order_no": str(order["id"]),
        "ordered_at": order.get("created_at") or order.get("processed_at"),
        "currency": currency,
        "customer": _customer(order, customer, billing, checks),
        "billing_address": billing,
        "deliveries": [{"address": shipping, "carrier": _carrier(order), "lines": lines}],
        "charges": {"shipping_fee": shipping_fee, "order_discount": order_discount, "total": total},
        "payment": {"method": method.value},
        "remarks": _text(order.get("note"), 2000) or None,
        "checks_for_staff": [check[:500] for check in checks[:20]],
    }
    try:
        return ShopOrderSubmitted.model_validate(raw)
    except ValidationError as error:
        raise ShopifyMappingError(
            [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_input=False, include_url=False)]
        ) from None


def _line(index: int, item: dict[str, Any], currency: str, taxes_included: bool, reasons: list[str], checks: list[str]) -> dict[str, Any]:
    what = f"line_items[{index}]"
    quantity = item.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity <= 1_000_000:
        reasons.append(f"{what}: quantity {quantity!r} is not a positive whole number")
        quantity = 1
    price = _minor(item.get("price"), currency, f"{what} price", reasons)
    discount = sum(_minor(a.get("amount"), currency, f"{what} discount", reasons) for a in _list(item.get("discount_allocations")))
    tax_lines = _list(item.get("tax_lines"))
    rate = _tax_percent(tax_lines, what, checks)
    if taxes_included:
        unit_price, line_discount = price, discount
    else:
        amount = price * quantity - discount + _taxes(tax_lines, currency, what, reasons)
        unit_price = -(-(amount + discount) // quantity)
        line_discount = unit_price * quantity - amount
    sku = _text(item.get("sku"), 64) or (f"variant-{item['variant_id']}" if item.get("variant_id") else f"line-{item.get('id', index)}")
    return {
        "sku": sku[:64],
        "name": _text(item.get("name") or item.get("title"), 256) or sku,
        "unit_price": max(unit_price, 0),
        "quantity": quantity,
        "tax_rate_percent": rate,
        "line_discount": max(line_discount, 0),
    }


def _payment(order: dict[str, Any], checks: list[str]) -> PaymentMethod:
    status = _financial_status(order)
    method = payment_method(order)
    if method is None:
        checks.append(
            f"payment gateway {', '.join(_gateways(order)) or '(none)'} is unknown and Shopify reports the payment "
            f"{status!r}: confirm how the customer pays"
        )
        return PaymentMethod.PLATFORM
    if status in NOT_COLLECTED:
        checks.append(f"Shopify reports the payment {status}: nothing is collected for this order")
    return method


def _customer(order: dict[str, Any], customer: dict[str, Any], billing: dict[str, Any], checks: list[str]) -> dict[str, Any]:
    member_since = customer.get("created_at")
    email = order.get("email") or order.get("contact_email") or customer.get("email")
    try:
        email = _EMAIL.validate_python(email) if email else None
    except ValidationError:
        checks.append("the customer's e-mail address is not valid: no mails until staff correct it")
        email = None
    try:
        since = datetime.fromisoformat(member_since).date().isoformat() if member_since and customer.get("state") == "enabled" else None
    except (TypeError, ValueError):
        since = None
    return {
        "customer_id": _text(customer.get("id"), 64) or f"guest-{order.get('id')}"[:64],
        "name": _text(" ".join(str(p) for p in (customer.get("last_name"), customer.get("first_name")) if p), 200)
        or billing["name"],
        "email": email,
        "phone": _text(customer.get("phone") or order.get("phone"), 32) or None,
        "member_since": since,
    }


def _carrier(order: dict[str, Any]) -> str | None:
    titles = [str(line.get("title") or "") for line in _list(order.get("shipping_lines"))]
    return "yamato" if any("ヤマト" in t or "yamato" in t.lower() for t in titles) else None


def _shown(amount: int, currency: str) -> str:
    digits = MINOR_UNITS.get(currency, 2)
    return f"{Decimal(amount).scaleb(-digits):.{digits}f} {currency}"
