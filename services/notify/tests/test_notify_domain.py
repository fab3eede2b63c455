"""The notify domain without I/O: the shop's mail templates render with order number and tracking details."""

import jinja2
import pytest

from ordermesh_contracts import MailKind
from ordermesh_notify.domain.mails import default_templates, render_mail, tracking_url

CONFIRMATION = {
    "customer_name": "山田 花子",
    "external_order_no": "RK-20250312-000481",
    "lines": [
        {"name": "宇治抹茶 特上 40g", "quantity": 2, "amount": 4120},
        {"name": "清水焼 抹茶碗", "quantity": 1, "amount": 5500},
    ],
    "total": 9660,
}
SHIPPED = {
    "customer_name": "山田 花子",
    "external_order_no": "RK-20250312-000481",
    "carrier": "yamato",
    "tracking_number": "482917346502",
    "tracking_url": tracking_url("yamato", "482917346502"),
}


@pytest.fixture(scope="module")
def templates() -> jinja2.Environment:
    return default_templates()


def test_the_order_confirmation_names_the_customer_the_order_number_every_line_and_the_total(
    templates: jinja2.Environment,
) -> None:
    mail = render_mail(templates, MailKind.ORDER_CONFIRMATION, CONFIRMATION)
    assert mail.subject == "【ご注文確認】ご注文番号 RK-20250312-000481"
    assert mail.text.startswith("山田 花子 様")
    assert "ご注文番号: RK-20250312-000481" in mail.text
    assert "- 宇治抹茶 特上 40g × 2  4120円" in mail.text
    assert "- 清水焼 抹茶碗 × 1  5500円" in mail.text
    assert "お支払い合計: 9660円" in mail.text
    assert "ordermesh demo shop" in mail.text


def test_the_shipped_mail_carries_the_order_number_tracking_number_and_tracking_link(
    templates: jinja2.Environment,
) -> None:
    mail = render_mail(templates, MailKind.SHIPPED, SHIPPED)
    assert mail.subject == "【発送のお知らせ】ご注文番号 RK-20250312-000481"
    assert "ご注文番号: RK-20250312-000481" in mail.text
    assert "お問い合わせ番号: 482917346502" in mail.text
    assert (
        "配送状況: https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number00=1&number01=482917346502" in mail.text
    )


def test_the_shipped_mail_for_an_unknown_carrier_has_no_tracking_link_line(templates: jinja2.Environment) -> None:
    mail = render_mail(templates, MailKind.SHIPPED, {**SHIPPED, "carrier": "seino", "tracking_url": None})
    assert "お問い合わせ番号: 482917346502" in mail.text
    assert "配送状況" not in mail.text
    assert "None" not in mail.text


@pytest.mark.parametrize(("kind", "variables", "missing"), [
    (MailKind.SHIPPED, SHIPPED, "tracking_number"),
    (MailKind.ORDER_CONFIRMATION, CONFIRMATION, "total"),
    (MailKind.ORDER_CONFIRMATION, CONFIRMATION, "customer_name"),
    (MailKind.SHIPPED, SHIPPED, "external_order_no"),
])
def test_a_missing_template_variable_raises_instead_of_rendering_a_blank(
    templates: jinja2.Environment, kind: MailKind, variables: dict, missing: str
) -> None:
    with pytest.raises(jinja2.UndefinedError):
        render_mail(templates, kind, {k: v for k, v in variables.items() if k != missing})


@pytest.mark.parametrize(
    ("carrier", "url"),
    [
        ("yamato", "https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number00=1&number01=482917346502"),
        ("sagawa", "https://k2k.sagawa-exp.co.jp/p/web/okurijosearch.do?okurijoNo=482917346502"),
        ("japanpost", "https://trackings.post.japanpost.jp/services/srv/search/direct?reqCodeNo1=482917346502"),
    ],
)
def test_a_known_carrier_has_a_tracking_url_with_the_number_in_it(carrier: str, url: str) -> None:
    assert tracking_url(carrier, "482917346502") == url


def test_an_unknown_carrier_has_no_tracking_url() -> None:
    assert tracking_url("seino", "482917346502") is None
