"""The notify domain without I/O: default templates per language and device, shop templates, settings, addresses."""

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from ordermesh_contracts import MailKind
from ordermesh_notify.domain.mails import (
    ShopMailSettings,
    address_problem,
    gives_up_on_deferral,
    mask_address,
    tracking_url,
    why_not_applicable,
)
from ordermesh_notify.domain.templates import (
    MailRenderer,
    MailTemplate,
    TemplateProblem,
    _environment,
    sample_variables,
)

CONFIRMATION = {
    **sample_variables(MailKind.ORDER_CONFIRMATION),
    "customer_name": "山田 花子",
    "external_order_no": "RK-20250312-000481",
    "lines": [
        {"name": "宇治抹茶 特上 40g", "quantity": 2, "amount": 4120},
        {"name": "清水焼 抹茶碗", "quantity": 1, "amount": 5500},
    ],
    "total": 9660,
}
SHIPPED = sample_variables(MailKind.SHIPPED)


@pytest.fixture(scope="module")
def renderer() -> MailRenderer:
    return MailRenderer()


def render(renderer, kind, variables, *, language="ja", device="pc", signature="京都茶舗", inserted_text=None):
    return renderer.render(
        renderer.default_template(language, kind), variables,
        device=device, language=language, signature=signature, inserted_text=inserted_text,
    )


def test_the_order_confirmation_names_the_customer_the_order_number_every_line_and_the_total(renderer) -> None:
    mail = render(renderer, MailKind.ORDER_CONFIRMATION, CONFIRMATION)
    assert mail.subject == "【ご注文確認】ご注文番号 RK-20250312-000481"
    assert mail.text.startswith("山田 花子 様")
    assert "- 宇治抹茶 特上 40g × 2  4,120円" in mail.text
    assert "- 清水焼 抹茶碗 × 1  5,500円" in mail.text
    assert "お支払い合計: 9,660円" in mail.text
    assert mail.template == "default:ja"


def test_the_shop_signature_and_the_per_order_text_end_both_parts_in_that_order(renderer) -> None:
    mail = render(renderer, MailKind.ORDER_CONFIRMATION, CONFIRMATION, inserted_text="のし紙をお付けしました。")
    assert mail.text.endswith("内消費税 305円）\n\nのし紙をお付けしました。\n\n京都茶舗\n")
    assert mail.html.index("のし紙をお付けしました。") < mail.html.index("京都茶舗")


def test_the_english_default_set_is_used_for_a_shop_whose_language_is_english(renderer) -> None:
    mail = render(renderer, MailKind.SHIPPED, SHIPPED, language="en")
    assert mail.subject == "Your order RK-20250312-000481 has shipped"
    assert "Tracking number: 482917346502" in mail.text
    assert 'lang="en"' in mail.html


def test_the_default_html_part_uses_the_mobile_layout_for_a_mobile_customer_and_links_the_tracking_page(renderer) -> None:
    mobile = render(renderer, MailKind.SHIPPED, SHIPPED, device="mobile")
    pc = render(renderer, MailKind.SHIPPED, SHIPPED, device="pc")
    assert 'name="ordermesh-device" content="mobile"' in mobile.html and 'name="viewport"' in mobile.html
    assert 'name="ordermesh-device" content="pc"' in pc.html
    assert '<a href="https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number00=1&amp;number01=482917346502"' in pc.html


def test_customer_text_is_escaped_in_the_html_part_but_left_alone_in_the_text_part(renderer) -> None:
    mail = render(renderer, MailKind.ORDER_CONFIRMATION, {**CONFIRMATION, "customer_name": "<script>alert(1)</script>"})
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert mail.text.startswith("<script>alert(1)</script> 様")


def test_a_shop_html_template_is_autoescaped_and_gets_the_signature_before_the_body_end(renderer) -> None:
    template = MailTemplate("発送 {{ external_order_no }}", "{{ customer_name }}", "<html><body><b>{{ customer_name }}</b></body></html>", "shop:any")
    mail = renderer.render(template, {**SHIPPED, "customer_name": "A&B"}, device="pc", language="ja", signature="京都<茶舗>")
    assert mail.html == '<html><body><b>A&amp;B</b><p class="signature">京都&lt;茶舗&gt;</p></body></html>'


def test_line_breaks_in_a_subject_are_flattened_so_no_header_can_be_injected(renderer) -> None:
    template = MailTemplate("{{ customer_name }}\nBcc: x@evil.example", "t", None, "shop:any")
    mail = renderer.render(template, SHIPPED, device="pc", language="ja", signature="")
    assert "\n" not in mail.subject


def test_every_default_template_in_both_languages_renders_with_its_sample_variables(renderer) -> None:
    for language in ("ja", "en"):
        for kind in MailKind:
            assert renderer.problems(renderer.default_template(language, kind), kind) == [], (language, kind)


@pytest.mark.parametrize(("kind", "variables", "missing"), [
    (MailKind.SHIPPED, SHIPPED, "tracking_number"),
    (MailKind.ORDER_CONFIRMATION, CONFIRMATION, "total"),
    (MailKind.PAYMENT_INSTRUCTIONS, sample_variables(MailKind.PAYMENT_INSTRUCTIONS), "due_date"),
    (MailKind.POINTS_CONFIRMED, sample_variables(MailKind.POINTS_CONFIRMED), "points"),
])
def test_a_missing_template_variable_is_a_template_problem_naming_the_variable(renderer, kind, variables, missing) -> None:
    with pytest.raises(TemplateProblem, match=f"template variable missing: '{missing}' is undefined"):
        render(renderer, kind, {k: v for k, v in variables.items() if k != missing})


def test_a_shop_template_with_a_syntax_error_has_a_problem_with_the_line(renderer) -> None:
    template = MailTemplate("ok", "line one\n{% if tracking_number %}no end", None, "shop")
    [problem] = renderer.problems(template, MailKind.SHIPPED)
    assert problem.startswith("template syntax error on line 2")


def test_a_shop_template_using_a_variable_the_kind_does_not_have_is_a_problem(renderer) -> None:
    template = MailTemplate("{{ external_order_no }}", "{{ tracking_number }}", None, "shop")
    assert renderer.problems(template, MailKind.ORDER_CONFIRMATION) == ["template variable missing: 'tracking_number' is undefined"]
    assert renderer.problems(template, MailKind.SHIPPED) == []


def test_a_shop_template_cannot_reach_python_internals(renderer) -> None:
    template = MailTemplate("x", "{{ lines.__class__.__mro__ }}", None, "shop")
    assert renderer.problems(template, MailKind.ORDER_CONFIRMATION)


def test_the_payment_instructions_carry_reference_amount_and_due_date(renderer) -> None:
    mail = render(renderer, MailKind.PAYMENT_INSTRUCTIONS, sample_variables(MailKind.PAYMENT_INSTRUCTIONS))
    assert "お支払い金額: 4,670円" in mail.text and "お支払い番号: PAY-7Q4K2M" in mail.text
    assert "お支払い期限: 2025-03-19" in mail.text


@pytest.mark.parametrize(("balance", "expected", "absent"), [(0, None, "残り"), (1200, "残りのお支払い: 1,200円", "過入金"), (-300, "過入金: 300円", "残り")])
def test_the_payment_received_mail_names_a_balance_due_or_overpaid(renderer, balance, expected, absent) -> None:
    mail = render(renderer, MailKind.PAYMENT_RECEIVED, {**sample_variables(MailKind.PAYMENT_RECEIVED), "balance": balance})
    assert absent not in mail.text
    if expected:
        assert expected in mail.text


def test_the_shipped_mail_for_an_unknown_carrier_has_no_tracking_link_line(renderer) -> None:
    mail = render(renderer, MailKind.SHIPPED, {**SHIPPED, "carrier": "seino", "tracking_url": None})
    assert "お問い合わせ番号: 482917346502" in mail.text
    assert "配送状況" not in mail.text and "None" not in mail.text


def test_order_changed_and_cancelled_mails_render_for_when_those_events_arrive(renderer) -> None:
    changed = render(renderer, MailKind.ORDER_CHANGED, sample_variables(MailKind.ORDER_CHANGED))
    cancelled = render(renderer, MailKind.ORDER_CANCELLED, {**sample_variables(MailKind.ORDER_CANCELLED), "reason": None})
    assert "- 宇治抹茶 特上 40g: 3 → 2" in changed.text and "変更後のお支払い合計: 4,670円" in changed.text
    assert "ご注文をキャンセルいたしました" in cancelled.text and "理由" not in cancelled.text


@pytest.mark.parametrize(("carrier", "url"), [
    ("yamato", "https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number00=1&number01=482917346502"),
    ("sagawa", "https://k2k.sagawa-exp.co.jp/p/web/okurijosearch.do?okurijoNo=482917346502"),
    ("japanpost", "https://trackings.post.japanpost.jp/services/srv/search/direct?reqCodeNo1=482917346502"),
    ("seino", None),
])
def test_a_known_carrier_has_a_tracking_url_with_the_number_in_it_and_an_unknown_one_none(carrier, url) -> None:
    assert tracking_url(carrier, "482917346502") == url


def test_a_kind_the_shop_turned_off_is_not_applicable_unless_staff_send_it_on_purpose() -> None:
    settings = ShopMailSettings(disabled_kinds=frozenset({MailKind.SHIPPED}))
    assert why_not_applicable(MailKind.SHIPPED, "a@example.com", settings) == "turned off"
    assert why_not_applicable(MailKind.SHIPPED, "a@example.com", settings, by_staff=True) is None
    assert why_not_applicable(MailKind.ORDER_CONFIRMATION, None, settings, by_staff=True) == "no e-mail address"


def test_preparing_shipment_and_points_mails_are_off_until_a_shop_turns_them_on() -> None:
    defaults = ShopMailSettings()
    assert why_not_applicable(MailKind.PREPARING_SHIPMENT, "a@example.com", defaults) == "turned off"
    assert why_not_applicable(MailKind.POINTS_CONFIRMED, "a@example.com", defaults) == "turned off"
    assert why_not_applicable(MailKind.ORDER_CONFIRMATION, "a@example.com", defaults) is None


@pytest.mark.parametrize("address", ["no-at-sign.example.com", "two@@example.com", "a b@example.com", "a@example", "a@example.com\r\nBcc: b@example.com"])
def test_an_invalid_address_has_a_reason(address) -> None:
    assert address_problem(address).startswith("invalid address")


def test_a_valid_address_has_no_problem_and_is_masked_for_staff_lists() -> None:
    assert address_problem("hanako.yamada+tea@mail.example.co.jp") is None
    assert mask_address("hanako.yamada@example.com") == "h***@example.com"


def test_a_deferred_recipient_is_given_up_after_the_limit_of_attempts() -> None:
    assert not gives_up_on_deferral(4, 5)
    assert gives_up_on_deferral(5, 5)


def test_a_mail_carries_the_rules_text_for_its_kind_then_the_staff_text() -> None:
    from ordermesh_contracts import MailKind
    from ordermesh_notify.mailing import inserted_text

    contact = {"mail_texts": {"order_confirmation": "ギフト包装いたします。 "}, "inserted_text": "担当: 佐藤"}
    assert inserted_text(contact, MailKind.ORDER_CONFIRMATION) == "ギフト包装いたします。\n\n担当: 佐藤"
    assert inserted_text(contact, MailKind.SHIPPED) == "担当: 佐藤"
    assert inserted_text({"mail_texts": {}, "inserted_text": None}, MailKind.SHIPPED) is None


def test_a_template_is_compiled_once_and_rendered_again_from_the_cache_with_new_variables() -> None:
    renderer = MailRenderer()
    template = renderer.default_template("ja", MailKind.ORDER_CONFIRMATION)
    first = render(renderer, MailKind.ORDER_CONFIRMATION, CONFIRMATION)
    second = render(renderer, MailKind.ORDER_CONFIRMATION, {**CONFIRMATION, "external_order_no": "RK-2"})
    assert "RK-20250312-000481" in first.text
    assert "RK-20250312-000481" not in second.text and "RK-2" in second.text
    assert renderer._compiled_text.cache_info().misses == 2  # subject and text, once each
    assert renderer._compiled_text.cache_info().hits == 2
    assert first.template == second.template == template.source


def test_a_cached_shop_template_still_cannot_reach_python_internals() -> None:
    renderer = MailRenderer()
    template = MailTemplate("x", "{{ lines.__class__.__mro__ }}", None, "shop")
    assert renderer.problems(template, MailKind.ORDER_CONFIRMATION)
    assert renderer.problems(template, MailKind.ORDER_CONFIRMATION)  # second time from the cache
    assert renderer._compiled_text.cache_info().hits >= 1


_LINK_TEXT = st.lists(st.sampled_from(
    list("abcw.:/@()<>&\"' -_0123456789\n\t\x00山田。：") + ["\ud800", "www.", "http://", "https://", "mailto:", ".com", "[::1]"]
)).map("".join)


_URLIZE_BOTH_WAYS = [
    (jinja2.Environment(autoescape=autoescape).from_string("{{ value|urlize }}"), _environment(autoescape).from_string("{{ value|urlize }}"))
    for autoescape in (True, False)
]


@settings(max_examples=400, deadline=None)
@given(text=_LINK_TEXT | st.text())
def test_urlize_links_exactly_what_jinjas_urlize_links_and_escapes_the_rest_alike(text: str) -> None:
    for plain, ours in _URLIZE_BOTH_WAYS:
        for value in (text, Markup(text)):
            assert ours.render(value=value) == plain.render(value=value)


def test_the_layouts_link_urls_and_addresses_and_escape_every_other_line(renderer) -> None:
    lines = ["お問い合わせ: shop@kyoto-tea.example.com", "https://toi.kuronekoyamato.co.jp/?number=1", "<b>太字</b> & 'x'", "www.example.com."]
    html = render(renderer, MailKind.SHIPPED, SHIPPED, signature="\n".join(lines)).html
    assert '<a href="mailto:shop@kyoto-tea.example.com">shop@kyoto-tea.example.com</a>' in html
    assert '<a href="https://toi.kuronekoyamato.co.jp/?number=1" rel="noopener">' in html
    assert "&lt;b&gt;太字&lt;/b&gt; &amp; &#39;x&#39;<br>" in html
    assert '<a href="https://www.example.com" rel="noopener">www.example.com</a>.<br>' in html


def test_the_packaged_templates_are_not_checked_for_changes_at_every_mail() -> None:
    renderer = MailRenderer()
    assert not renderer._text.auto_reload and not renderer._html.auto_reload
