"""Shopify orders/create webhooks: signature checks and the mapping to the intake contract (pure)."""

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from ordermesh_contracts import PaymentMethod
from ordermesh_orders.domain.intake import rejection_reasons
from ordermesh_orders.domain.shopify import (
    ShopifyMappingError,
    map_order,
    signature_is_valid,
)

DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).resolve().parents[3] / "tests" / "data" / "shopify"


def shopify_order() -> dict:
    return json.loads((DATA / "shopify_orders_create.json").read_text())


def test_ids_beyond_two_to_the_53_survive_exactly_as_the_external_order_number():
    mapped = map_order("kyoto-tea", shopify_order())
    assert mapped.external_order_no == "5678901234567890123"
    assert mapped.customer.customer_id == "7234567890123456789"


def test_money_strings_become_integer_yen_with_line_discounts_tax_rates_and_shipping():
    mapped = map_order("kyoto-tea", shopify_order())
    matcha, cookie = mapped.deliveries[0].lines
    assert (matcha.unit_price, matcha.quantity, matcha.line_discount, matcha.tax_rate_percent) == (2980, 2, 400, 10)
    assert (cookie.unit_price, cookie.tax_rate_percent, cookie.line_discount) == (1800, 8, 0)
    assert mapped.charges.shipping_fee == 550 and mapped.charges.total == 7910
    assert rejection_reasons(mapped) == []


def test_addresses_customer_gateway_and_remarks_are_mapped():
    mapped = map_order("kyoto-tea", shopify_order())
    assert mapped.payment.method is PaymentMethod.PLATFORM and mapped.payment.card_token is None
    assert mapped.deliveries[0].address.prefecture == "東京都" and mapped.billing_address.postal_code == "604-8005"
    assert mapped.deliveries[0].carrier == "yamato"
    assert str(mapped.customer.member_since) == "2023-06-01"
    assert mapped.remarks == "不在時は宅配ボックスへ"
    assert mapped.ordered_at.utcoffset().total_seconds() == 9 * 3600


@pytest.mark.parametrize("gateway", ["shopify_payments", "stripe", "paypal", "PayPal"])
def test_gateways_whose_money_shopify_took_map_to_paid_on_the_platform_with_nothing_to_authorize(gateway):
    order = shopify_order()
    order["payment_gateway_names"] = [gateway]
    mapped = map_order("kyoto-tea", order)
    assert mapped.payment.method is PaymentMethod.PLATFORM and mapped.payment.card_token is None
    assert rejection_reasons(mapped) == []


@pytest.mark.parametrize(
    ("gateway", "method"),
    [
        ("Cash on Delivery (COD)", PaymentMethod.CASH_ON_DELIVERY),
        ("Bank Deposit", PaymentMethod.BANK_TRANSFER),
        ("konbini", PaymentMethod.CONVENIENCE_STORE),
    ],
)
def test_manual_gateways_not_yet_paid_keep_their_own_payment_method(gateway, method):
    order = shopify_order()
    order["payment_gateway_names"] = [gateway]
    order["financial_status"] = "pending"
    assert map_order("kyoto-tea", order).payment.method is method


@pytest.mark.parametrize("gateways", [["Bank Deposit"], ["Cash on Delivery (COD)"], ["some-new-wallet"], []])
@pytest.mark.parametrize("status", ["paid", "authorized", "partially_paid"])
def test_an_order_whose_money_shopify_holds_is_paid_on_the_platform_whatever_its_gateway(gateways, status):
    order = shopify_order()
    order["payment_gateway_names"] = gateways
    order["financial_status"] = status
    mapped = map_order("kyoto-tea", order)
    assert mapped.payment.method is PaymentMethod.PLATFORM and mapped.checks_for_staff == []


def test_an_unknown_gateway_with_money_not_yet_held_is_taken_in_with_a_check_for_staff():
    order = shopify_order()
    order["payment_gateway_names"] = ["mystery-pay"]
    order["financial_status"] = "pending"
    mapped = map_order("kyoto-tea", order)
    assert mapped.payment.method is PaymentMethod.PLATFORM
    assert mapped.checks_for_staff == [
        "payment gateway mystery-pay is unknown and Shopify reports the payment 'pending': confirm how the customer pays"
    ]


def published(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def test_shopifys_2019_published_sample_maps_in_dollars_with_its_discount_and_every_check_staff_must_make():
    mapped = map_order("demo-shop", published("orders_create_sample_2019.json"))
    assert (mapped.currency, mapped.external_order_no) == ("USD", "820982911946154508")
    first, second = mapped.deliveries[0].lines
    assert (first.unit_price, first.line_discount, second.unit_price, second.line_discount) == (19900, 0, 19900, 500)
    assert (mapped.charges.shipping_fee, mapped.charges.order_discount, mapped.charges.total) == (1000, 0, 40300)
    assert mapped.deliveries[0].address.country == "US" and mapped.deliveries[0].address.prefecture == "Kentucky"
    assert rejection_reasons(mapped) == []
    checks = " | ".join(mapped.checks_for_staff)
    assert "visa, bogus is unknown" in checks and "'voided'" in checks and "cancelled at 2019-06-04T13:53:06-04:00" in checks


def test_shopifys_current_published_sample_that_does_not_add_up_is_taken_in_at_its_lines_with_a_check():
    mapped = map_order("demo-shop", published("orders_create_sample.json"))
    [line] = mapped.deliveries[0].lines
    assert (line.sku, line.unit_price, line.quantity, line.tax_rate_percent) == ("SKU2006-001", 8999, 1, 0)
    assert (mapped.charges.shipping_fee, mapped.charges.total) == (0, 8999)
    assert rejection_reasons(mapped) == []
    assert any("404.95 USD does not match its lines and shipping (89.99 USD)" in c for c in mapped.checks_for_staff)
    assert mapped.customer.email == "jon@example.com" and mapped.customer.member_since is None


def test_tax_exclusive_yen_prices_get_their_tax_lines_added_per_line_and_on_shipping():
    order = shopify_order()
    order["taxes_included"] = False
    matcha, cookie = order["line_items"]
    matcha["price"], matcha["tax_lines"] = "2710", [{"price": "502", "rate": 0.1, "title": "消費税"}]
    cookie["price"], cookie["tax_lines"] = "1667", [{"price": "133", "rate": 0.08, "title": "消費税（軽減税率）"}]
    order["shipping_lines"][0].update(discounted_price="500", tax_lines=[{"price": "50", "rate": 0.1}])
    order["total_price"] = str(2710 * 2 - 400 + 502 + 1667 + 133 + 550)
    mapped = map_order("kyoto-tea", order)
    matcha_line, cookie_line = mapped.deliveries[0].lines
    assert matcha_line.unit_price * 2 - matcha_line.line_discount == 2710 * 2 - 400 + 502
    assert (cookie_line.unit_price, cookie_line.line_discount, cookie_line.tax_rate_percent) == (1800, 0, 8)
    assert mapped.charges.shipping_fee == 550 and mapped.checks_for_staff == [] and rejection_reasons(mapped) == []


def test_a_tax_that_does_not_divide_by_the_quantity_keeps_the_line_amount_exact_with_the_rounding_as_discount():
    order = shopify_order()
    order.update(currency="USD", taxes_included=False, total_price="32.41", shipping_lines=[])
    order["line_items"] = [{"id": 1, "sku": "MUG", "name": "Mug", "price": "10.00", "quantity": 3, "tax_lines": [{"price": "2.41", "rate": 0.08}]}]
    mapped = map_order("kyoto-tea", order)
    [line] = mapped.deliveries[0].lines
    assert (line.unit_price, line.line_discount, line.unit_price * 3 - line.line_discount) == (1081, 2, 3241)
    assert line.tax_rate_percent == 8 and mapped.charges.total == 3241


def test_a_tax_rate_that_is_not_a_whole_percent_is_rounded_with_a_check():
    order = shopify_order()
    order["line_items"][1]["tax_lines"] = [{"price": "0", "rate": 0.08875}]
    mapped = map_order("kyoto-tea", order)
    assert mapped.deliveries[0].lines[1].tax_rate_percent == 9
    assert mapped.checks_for_staff == ["line_items[1]: tax rate 8.875% recorded as 9%"]


@pytest.mark.parametrize(("currency", "amount", "minor"), [("KWD", "1.250", 1250), ("CLP", "1250", 1250), ("EUR", "12.50", 1250)])
def test_other_currencies_use_their_own_minor_unit(currency, amount, minor):
    order = shopify_order()
    order.update(currency=currency, total_price=amount, shipping_lines=[], taxes_included=True)
    order["line_items"] = [{"id": 1, "sku": "X", "name": "X", "price": amount, "quantity": 1, "tax_lines": []}]
    mapped = map_order("kyoto-tea", order)
    assert (mapped.currency, mapped.charges.total, mapped.deliveries[0].lines[0].unit_price) == (currency, minor, minor)


@pytest.mark.parametrize(
    "body",
    [[], "order", None, {"id": 1, "currency": "JPY"}, {"id": 1, "currency": "XXX", "line_items": [{"price": "1"}]},
     {"currency": "JPY", "line_items": [{"price": "1"}]}, {"id": True, "currency": "JPY", "line_items": [{}]}],
)
def test_a_body_that_is_not_an_order_is_refused_with_its_reasons(body):
    with pytest.raises(ShopifyMappingError) as raised:
        map_order("kyoto-tea", body)
    assert raised.value.reasons


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", "1e400"), ("price", "NaN"), ("price", {"nested": [[[]]]}), ("price", "29.805"), ("quantity", 10**30), ("quantity", "2")],
)
def test_hostile_amounts_and_quantities_are_refused_with_a_reason_not_a_crash(field, value):
    order = shopify_order()
    order["line_items"][0][field] = value
    with pytest.raises(ShopifyMappingError) as raised:
        map_order("kyoto-tea", order)
    assert any("line_items[0]" in reason for reason in raised.value.reasons)


def test_nul_bytes_odd_types_and_a_missing_address_still_map_with_checks():
    order = shopify_order()
    order["note"] = "宅配ボックス\x00へ"
    order["customer"] = "not an object"
    order["email"] = "not-an-address"
    order["shipping_address"] = None
    order["billing_address"] = {"zip": None, "name": "\ud800"}
    mapped = map_order("kyoto-tea", order)
    checks = " | ".join(mapped.checks_for_staff)
    assert "e-mail address is not valid" in checks and "billing address: postal_code, prefecture, city, line1 missing" in checks
    assert mapped.customer.email is None and mapped.deliveries[0].address == mapped.billing_address


def test_the_webhook_signature_is_the_base64_hmac_of_the_raw_body():
    body = json.dumps(shopify_order()).encode()
    good = base64.b64encode(hmac.new(b"shpss_secret", body, hashlib.sha256).digest()).decode()
    assert signature_is_valid("shpss_secret", body, good)
    assert not signature_is_valid("other-secret", body, good)
    assert not signature_is_valid("shpss_secret", body + b" ", good)
    assert not signature_is_valid("shpss_secret", body, "not base64 at all")
