"""The MIME message: multipart/alternative with both parts, and ISO-2022-JP only when every character fits."""

import email
import email.policy

from ordermesh_notify.adapters.mime import OutgoingMail, build_message, charset_for


def mail(**changes) -> OutgoingMail:
    fields = dict(
        message_id="<m1@ordermesh.example>", sender="shop@ordermesh.example", recipient="hanako@example.com",
        subject="【発送のお知らせ】ご注文番号 RK-1", text="山田 花子 様\n発送しました。\n", html="<p>山田 花子 様</p>",
    )
    return OutgoingMail(**{**fields, **changes})


def parse(outgoing: OutgoingMail):
    return email.message_from_bytes(build_message(outgoing).as_bytes(), policy=email.policy.default)


def test_a_mail_is_multipart_alternative_with_a_text_and_an_html_part_in_utf_8_by_default() -> None:
    parsed = parse(mail())
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content() == "山田 花子 様\n発送しました。\n"
    assert parsed.get_body(("html",)).get_content() == "<p>山田 花子 様</p>"
    assert parsed.get_body(("plain",)).get_content_charset() == "utf-8"
    assert parsed["Subject"] == "【発送のお知らせ】ご注文番号 RK-1"
    assert parsed["Message-ID"] == "<m1@ordermesh.example>"


def test_a_shop_asking_for_iso_2022_jp_gets_it_when_every_character_fits() -> None:
    outgoing = mail(encoding="iso-2022-jp")
    raw = build_message(outgoing).as_bytes()
    assert b"iso-2022-jp" in raw.lower() and max(raw) < 128
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_body(("plain",)).get_content() == "山田 花子 様\n発送しました。\n"
    assert parsed["Subject"] == "【発送のお知らせ】ご注文番号 RK-1"


def test_iso_2022_jp_falls_back_to_utf_8_when_a_character_cannot_be_carried() -> None:
    for text in ("① 丸数字", "髙橋 様", "ﾊﾝｶｸ"):
        outgoing = mail(encoding="iso-2022-jp", text=text)
        assert charset_for(outgoing) == "utf-8", text
        assert parse(outgoing).get_body(("plain",)).get_content() == text


def test_a_mail_without_html_is_a_single_text_part() -> None:
    parsed = parse(mail(html=None))
    assert parsed.get_content_type() == "text/plain"
