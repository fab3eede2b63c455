"""Shopify orders/create webhooks: signature checks and the mapping to the intake contract (pure)."""

import base64
import copy
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
def test_an_order_shopify_reports_as_paid_is_paid_on_the_platform_whatever_its_gateway(gateways):
    order = shopify_order()
    order["payment_gateway_names"] = gateways
    order["financial_status"] = "paid"
    assert map_order("kyoto-tea", order).payment.method is PaymentMethod.PLATFORM


def test_an_order_that_cannot_be_mapped_lists_every_reason():
    order = copy.deepcopy(shopify_order())
    order["taxes_included"] = False
    order["payment_gateway_names"] = ["mystery-pay"]
    order["line_items"][0]["price"] = "29.805"
    with pytest.raises(ShopifyMappingError) as raised:
        map_order("kyoto-tea", order)
    reasons = raised.value.reasons
    assert any("tax-inclusive" in r for r in reasons)
    assert any("mystery-pay" in r for r in reasons)
    assert any("line_items[0] price" in r for r in reasons)


def test_the_webhook_signature_is_the_base64_hmac_of_the_raw_body():
    body = json.dumps(shopify_order()).encode()
    good = base64.b64encode(hmac.new(b"shpss_secret", body, hashlib.sha256).digest()).decode()
    assert signature_is_valid("shpss_secret", body, good)
    assert not signature_is_valid("other-secret", body, good)
    assert not signature_is_valid("shpss_secret", body + b" ", good)
    assert not signature_is_valid("shpss_secret", body, "not base64 at all")
