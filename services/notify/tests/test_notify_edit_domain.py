"""The order-changed mail without I/O: the snapshot notify keeps of an order, the change lines, and the default
templates in both languages and on both devices (cancelled and returned lines, totals, balance due or refund)."""

import json
from pathlib import Path

import pytest
from ordermesh_contracts import LineDiff, MailKind, OrderEdited
from ordermesh_notify.domain.snapshot import change_descriptions, order_changed_variables, order_summary
from ordermesh_notify.domain.templates import MailRenderer, sample_variables

GOLDEN = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "golden"


def golden_edit() -> OrderEdited:
    return OrderEdited.model_validate(json.loads((GOLDEN / "OrderEdited.json").read_text("utf-8")))


def edit_with_cancelled_and_returned_lines(balance: int) -> OrderEdited:
    """Matcha 3 → 2 booked as a negative line beside the original, the tea bowl set to 0 (returned), the whisk removed."""
    edit = golden_edit()
    matcha, bowl = edit.deliveries[0].lines
    lines = [
        matcha,
        matcha.model_copy(update={"quantity": -1, "line_discount": 0}),
        bowl.model_copy(update={"quantity": 0}),
    ]
    changes = [
        LineDiff(delivery_index=0, sku=matcha.sku, change="cancelled_booked", previous_quantity=3, quantity=2,
                 unit_price=2160, previous_line_discount=200, line_discount=200),
        LineDiff(delivery_index=0, sku=bowl.sku, change="returned", previous_quantity=1, quantity=0,
                 unit_price=5500, previous_line_discount=0, line_discount=0),
        LineDiff(delivery_index=0, sku="CHASEN-80", change="removed", previous_quantity=1, quantity=0,
                 unit_price=3300, previous_line_discount=0, line_discount=0),
    ]
    charges = edit.charges.model_copy(update={"payment_fee": 330, "total": 4080})
    return edit.model_copy(update={
        "deliveries": [edit.deliveries[0].model_copy(update={"lines": lines})],
        "changes": changes, "charges": charges, "balance": balance, "paid": 4080 - balance,
    })


def variables_of(edit: OrderEdited, known_names: dict[str, str]) -> dict:
    summary = order_summary(
        currency=edit.currency, payment_method=edit.payment.method.value, deliveries=edit.deliveries,
        charges=edit.charges, edit_no=edit.edit_no,
    )
    return {
        **sample_variables(MailKind.ORDER_CHANGED),
        "external_order_no": edit.external_order_no,
        **order_changed_variables(
            summary, edit.changes, {**known_names, **summary["names"]},
            previous_total=edit.previous_charges.total, balance=edit.balance,
        ),
    }


@pytest.fixture(scope="module")
def renderer() -> MailRenderer:
    return MailRenderer()


def render(renderer, variables, *, language="ja", device="pc"):
    template = renderer.default_template(language, MailKind.ORDER_CHANGED)
    return renderer.render(template, variables, device=device, language=language, signature="京都茶舗")


def test_the_summary_keeps_every_line_with_its_state_and_the_charges_of_the_edit() -> None:
    edit = edit_with_cancelled_and_returned_lines(balance=0)
    summary = order_summary(
        currency="JPY", payment_method="card", deliveries=edit.deliveries, charges=edit.charges, edit_no=edit.edit_no
    )
    assert [(line["sku"], line["quantity"], line["amount"], line["state"]) for line in summary["lines"]] == [
        ("MATCHA-UJI-40G", 3, 6280, "ordered"),
        ("MATCHA-UJI-40G", -1, -2160, "cancelled"),
        ("CHAWAN-KIYOMIZU", 0, 0, "returned"),
    ]
    assert (summary["total"], summary["shipping_fee"], summary["payment_fee"], summary["points_used"]) == (4080, 660, 330, 120)
    assert summary["edit_no"] == 1 and summary["names"]["CHAWAN-KIYOMIZU"] == "清水焼 抹茶碗"


def test_change_lines_name_each_sku_even_a_removed_one_and_skip_discount_only_changes() -> None:
    diffs = [
        LineDiff(delivery_index=0, sku="A", change="changed", previous_quantity=2, quantity=5, unit_price=100,
                 previous_line_discount=0, line_discount=0),
        LineDiff(delivery_index=0, sku="B", change="discount_changed", previous_quantity=1, quantity=1, unit_price=100,
                 previous_line_discount=0, line_discount=50),
        LineDiff(delivery_index=0, sku="GONE", change="removed", previous_quantity=1, quantity=0, unit_price=100,
                 previous_line_discount=0, line_discount=0),
    ]
    assert change_descriptions(diffs, {"A": "煎茶", "B": "ほうじ茶"}) == ["煎茶: 2 → 5", "GONE: 1 → 0"]


def test_the_japanese_change_mail_shows_cancelled_and_returned_lines_the_new_totals_and_a_balance_due(renderer) -> None:
    mail = render(renderer, variables_of(edit_with_cancelled_and_returned_lines(balance=700), {"CHASEN-80": "茶筅 80本立"}))
    assert "- 宇治抹茶 特上 40g: 3 → 2\n- 清水焼 抹茶碗: 1 → 0\n- 茶筅 80本立: 1 → 0\n" in mail.text
    assert "- 宇治抹茶 特上 40g × 3  6,280円\n- 宇治抹茶 特上 40g × 1  キャンセル  -2,160円\n- 清水焼 抹茶碗  返品\n" in mail.text
    assert "送料: 660円\n決済手数料: 330円\n割引: -500円\nポイント利用: -120円\n変更後のお支払い合計: 4,080円\n" in mail.text
    assert "追加のお支払い: 700円" in mail.text and "ご返金" not in mail.text
    assert mail.subject == "【ご注文内容変更】ご注文番号 RK-20250312-000481"


@pytest.mark.parametrize(("balance", "shown"), [(-1500, "ご返金予定額: 1,500円"), (0, None)])
def test_a_refund_owed_is_named_and_a_settled_order_names_no_balance(renderer, balance, shown) -> None:
    text = render(renderer, variables_of(edit_with_cancelled_and_returned_lines(balance=balance), {})).text
    assert "追加のお支払い" not in text
    if shown:
        assert shown in text
    else:
        assert "ご返金" not in text


def test_the_english_change_mail_on_a_phone_has_the_same_lines_in_the_mobile_layout(renderer) -> None:
    mail = render(renderer, variables_of(edit_with_cancelled_and_returned_lines(balance=-1500), {}), language="en", device="mobile")
    assert mail.subject == "Your order RK-20250312-000481 was changed"
    assert "- 宇治抹茶 特上 40g x 1  cancelled  -2,160 JPY\n- 清水焼 抹茶碗  returned\n" in mail.text
    assert "New total: 4,080 JPY\nTo be refunded: 1,500 JPY" in mail.text
    assert 'content="mobile"' in mail.html and "清水焼 抹茶碗  returned" in mail.html
