"""What a Japanese shop notices in its mails: separated amounts, fees and tax per rate, carriers by name, where to pay."""

import pytest
from ordermesh_contracts import Address, Charges, DeliveryGroup, MailKind, OrderLine
from ordermesh_notify.domain.mails import carrier_name, with_names
from ordermesh_notify.domain.snapshot import order_summary
from ordermesh_notify.domain.templates import MailRenderer, format_amount, sample_variables

ADDRESS = Address(name="山田 花子", postal_code="150-0001", prefecture="東京都", city="渋谷区", line1="神宮前1-1-1")


@pytest.fixture(scope="module")
def renderer() -> MailRenderer:
    return MailRenderer()


def render(renderer, kind, variables, language="ja"):
    template = renderer.default_template(language, kind)
    return renderer.render(template, with_names(variables, language), device="pc", language=language, signature="京都茶舗")


def order_variables(currency="JPY", **charges):
    delivery = DeliveryGroup(
        address=ADDRESS,
        lines=[
            OrderLine(sku="MATCHA", name="宇治抹茶 特上 40g", unit_price=2160, quantity=2, tax_rate_percent=8),
            OrderLine(sku="BOWL", name="清水焼 抹茶碗", unit_price=3500, quantity=1, tax_rate_percent=10),
        ],
    )
    summary = order_summary(
        currency=currency, payment_method="cash_on_delivery", deliveries=[delivery],
        charges=Charges(total=4320 + 3500 + 880, **charges),
    )
    keys = ("lines", "total", "shipping_fee", "payment_fee", "order_discount", "points_used", "tax_breakdown", "currency")
    return {**sample_variables(MailKind.ORDER_CONFIRMATION), **{key: summary[key] for key in keys}}


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [(3500, "JPY", "3,500"), (1234567, "JPY", "1,234,567"), (-2160, "JPY", "-2,160"), (123450, "USD", "1,234.50"), (1250, "KWD", "1.250")],
)
def test_amounts_are_written_with_thousands_separators_in_the_currencys_own_decimals(minor, currency, shown):
    assert format_amount(minor, currency) == shown


def test_the_confirmation_lists_each_line_the_shipping_and_payment_fees_and_the_tax_of_each_rate(renderer):
    mail = render(renderer, MailKind.ORDER_CONFIRMATION, order_variables(shipping_fee=550, payment_fee=330))
    assert "- 宇治抹茶 特上 40g × 2  4,320円 ※\n- 清水焼 抹茶碗 × 1  3,500円\n" in mail.text
    assert "送料: 550円\n決済手数料: 330円\nお支払い合計: 8,700円\n" in mail.text
    assert "（10%対象 4,380円　内消費税 398円）\n（8%対象 4,320円　内消費税 320円）\n" in mail.text
    assert "※は軽減税率（8%）対象商品です。" in mail.text


def test_the_english_confirmation_writes_dollar_amounts_with_cents(renderer):
    variables = {**order_variables("USD", shipping_fee=550, payment_fee=330), "currency": "USD"}
    mail = render(renderer, MailKind.ORDER_CONFIRMATION, variables, language="en")
    assert "Total: 87.00 USD" in mail.text and "Shipping: 5.50 USD" in mail.text


@pytest.mark.parametrize("carrier", ["yamato", "yamato_b2"])
def test_the_shipped_mail_names_the_carrier_as_customers_know_it_and_shows_tax_per_rate(renderer, carrier):
    variables = {**sample_variables(MailKind.SHIPPED), **order_variables(shipping_fee=550, payment_fee=330), "carrier": carrier}
    del variables["carrier_name"]
    mail = render(renderer, MailKind.SHIPPED, variables)
    assert "配送業者: ヤマト運輸\n" in mail.text and "yamato" not in mail.text.split("配送状況")[0]
    assert "（8%対象 4,320円　内消費税 320円）" in mail.text
    assert render(renderer, MailKind.SHIPPED, variables, language="en").text.count("Carrier: Yamato Transport") == 1


def test_an_unknown_carrier_keeps_its_code_and_known_ones_have_names_in_both_languages():
    assert carrier_name("sagawa", "ja") == "佐川急便" and carrier_name("japanpost", "en") == "Japan Post"
    assert carrier_name("local-courier", "ja") == "local-courier"


def instructions(renderer, **given):
    variables = {**sample_variables(MailKind.PAYMENT_INSTRUCTIONS), **given}
    return render(renderer, MailKind.PAYMENT_INSTRUCTIONS, variables).text


def test_bank_transfer_instructions_carry_the_shops_account_and_warn_of_automatic_cancellation_only_when_enabled(renderer):
    account = "京都中央銀行 本店営業部 普通 1234567 カ）キョウトチャホ"
    enabled = instructions(renderer, pay_to=account, cancels_when_overdue=True, amount=3500)
    assert f"お振込先:\n{account}\n" in enabled and "お支払い金額: 3,500円" in enabled
    assert "自動的にキャンセル" in enabled
    disabled = instructions(renderer, pay_to=account, cancels_when_overdue=False)
    assert "キャンセル" not in disabled and "当店よりご連絡いたします" in disabled


def test_convenience_store_instructions_and_a_shop_without_an_account_show_no_account_block(renderer):
    assert "お振込先" not in instructions(renderer, method="convenience_store", pay_to="京都中央銀行 本店営業部 普通 1234567")
    assert "お振込先" not in instructions(renderer, pay_to=None)
