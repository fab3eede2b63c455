"""The mail's bytes, read back with the stdlib parser: multipart/alternative with both parts, ISO-2022-JP only when
every character fits, headers in RFC 2047 encoded words, CRLF lines of at most 998 octets, 7-bit throughout."""

import email
import email.policy
import re
from email.utils import parseaddr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ordermesh_notify.adapters.mime import OutgoingMail, charset_for, envelope_address, mail_bytes


def mail(**changes) -> OutgoingMail:
    fields = dict(
        message_id="<m1@ordermesh.example>", sender="shop@ordermesh.example", recipient="hanako@example.com",
        subject="【発送のお知らせ】ご注文番号 RK-1", text="山田 花子 様\n発送しました。\n", html="<p>山田 花子 様</p>",
    )
    return OutgoingMail(**{**fields, **changes})


def parse(outgoing: OutgoingMail):
    return email.message_from_bytes(well_formed(mail_bytes(outgoing)), policy=email.policy.default)


def well_formed(raw: bytes) -> bytes:
    """`raw` after checking what SMTP needs of it: 7-bit, CRLF only, no line over 998 octets, ending in CRLF."""
    assert max(raw) < 128
    assert raw.endswith(b"\r\n")
    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n")), head
    return raw


def test_a_mail_is_multipart_alternative_with_a_text_and_an_html_part_in_utf_8_by_default() -> None:
    parsed = parse(mail())
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content() == "山田 花子 様\n発送しました。\n"
    assert parsed.get_body(("html",)).get_content() == "<p>山田 花子 様</p>"
    assert parsed.get_body(("plain",)).get_content_charset() == "utf-8"
    assert parsed.get_body(("html",)).get_content_charset() == "utf-8"
    assert parsed["Subject"] == "【発送のお知らせ】ご注文番号 RK-1"
    assert parsed["Message-ID"] == "<m1@ordermesh.example>"
    assert (parsed["From"], parsed["To"], parsed["MIME-Version"]) == ("shop@ordermesh.example", "hanako@example.com", "1.0")
    assert parsed["Date"].datetime is not None
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed.defects == [] and all(part.defects == [] for part in parsed.walk())


def test_the_date_and_boundary_given_are_used() -> None:
    raw = mail_bytes(mail(), date="Wed, 02 Dec 2026 16:32:21 -0000", boundary="=_b1")
    assert b"\r\nDate: Wed, 02 Dec 2026 16:32:21 -0000\r\n" in raw
    assert b'boundary="=_b1"' in raw and raw.endswith(b"\r\n--=_b1--\r\n")


def test_a_shop_asking_for_iso_2022_jp_gets_it_when_every_character_fits() -> None:
    outgoing = mail(encoding="iso-2022-jp")
    raw = mail_bytes(outgoing)
    assert b"iso-2022-jp" in raw.lower() and b"Content-Transfer-Encoding: 7bit" in raw
    parsed = parse(outgoing)
    # A 7-bit part's lines end in CRLF on the wire (as they did once aiosmtplib normalised the email package's LF).
    assert parsed.get_body(("plain",)).get_content() == "山田 花子 様\r\n発送しました。\r\n"
    assert parsed.get_body(("plain",)).get_content_charset() == "iso-2022-jp"
    assert parsed.get_body(("html",)).get_content() == "<p>山田 花子 様</p>"
    assert parsed["Subject"] == "【発送のお知らせ】ご注文番号 RK-1"


def test_iso_2022_jp_falls_back_to_utf_8_when_a_character_cannot_be_carried() -> None:
    for text in ("① 丸数字", "髙橋 様", "ﾊﾝｶｸ"):
        outgoing = mail(encoding="iso-2022-jp", text=text)
        assert charset_for(outgoing) == "utf-8", text
        assert parse(outgoing).get_body(("plain",)).get_content() == text


def test_an_iso_2022_jp_part_with_a_line_too_long_for_smtp_or_a_nul_goes_in_base64() -> None:
    long_line = "お届け日についてご連絡いたします。" * 40
    for text in (long_line + "\n", "a\x00b\n"):
        outgoing = mail(encoding="iso-2022-jp", text=text)
        assert charset_for(outgoing) == "iso-2022-jp"
        plain = parse(outgoing).get_body(("plain",))
        assert plain["Content-Transfer-Encoding"] == "base64"
        assert plain.get_content() == text


def test_a_mail_without_html_is_a_single_text_part() -> None:
    parsed = parse(mail(html=None))
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content() == "山田 花子 様\n発送しました。\n"
    assert parsed["Subject"] == "【発送のお知らせ】ご注文番号 RK-1"


@pytest.mark.parametrize("encoding", ["utf-8", "iso-2022-jp"])
@pytest.mark.parametrize("subject", [
    "", "Your order RK-1 has shipped", "ご注文ありがとうございます", "【発送のお知らせ】" * 12, "x" * 300,
    "Order =?utf-8?q?x?= RK-1", "mixed 日本語 and ASCII " * 6, "絵文字 🍵 付き", "a\x00b", "tab\there",
])
def test_any_subject_reads_back_as_it_was_in_lines_of_at_most_78(subject: str, encoding: str) -> None:
    assert parse(mail(subject=subject, encoding=encoding))["Subject"] == subject


def test_a_plain_short_ascii_subject_goes_as_it_is() -> None:
    assert b"\r\nSubject: Your order RK-1 has shipped\r\n" in mail_bytes(mail(subject="Your order RK-1 has shipped"))


def test_encoded_words_hold_whole_characters() -> None:
    raw = mail_bytes(mail(subject="🍵" * 40 + "抹茶" * 30))
    for word in re.findall(rb"=\?utf-8\?b\?([A-Za-z0-9+/=]+)\?=", raw):
        email.base64mime.decode(word.decode()).decode("utf-8")  # each word decodes on its own


def test_bodies_with_every_kind_of_text_read_back_as_they_were() -> None:
    text = "行1\n" + "https://example.com/" + "a" * 2000 + "\n\x00NUL\tTAB\n絵文字 🍵\n.\n..leading dots\nFrom me\n"
    html = "<p>" + "長い段落。" * 500 + "</p>\n<p>.</p>"
    parsed = parse(mail(text=text, html=html))
    assert parsed.get_body(("plain",)).get_content() == text
    assert parsed.get_body(("html",)).get_content() == html


def test_a_lone_surrogate_is_refused_as_the_email_package_refused_it() -> None:
    for changes in ({"text": "x\ud800y"}, {"subject": "s\udfff"}, {"html": "<p>\ud800</p>"}):
        with pytest.raises(UnicodeEncodeError):
            mail_bytes(mail(**changes))


def test_a_recipient_beyond_ascii_is_carried_in_encoded_words_and_a_senders_name_is_encoded_alone() -> None:
    outgoing = mail(recipient="山田@example.com", sender="京都茶舗 <shop@ordermesh.example>")
    assert b"\r\nTo: =?utf-8?b?5bGx55SwQGV4YW1wbGUuY29t?=\r\n" in mail_bytes(outgoing)  # as the email package wrote it
    parsed = parse(outgoing)
    assert parsed["From"].addresses[0].display_name == "京都茶舗"
    assert parsed["From"].addresses[0].addr_spec == "shop@ordermesh.example"
    assert envelope_address("京都茶舗 <shop@ordermesh.example>") == "shop@ordermesh.example"
    for address in ("hanako@example.com", "o'brien+tea@mail.example.co.jp", " hanako@example.com ", "<hanako@example.com>",
                    "Hanako <hanako@example.com>", '"Yamada, Hanako" <hanako@example.com>', "hanako@example.com (Hanako)",
                    "山田@example.com"):
        assert envelope_address(address) == (parseaddr(address)[1] or address.strip()), address


def test_the_boundary_never_occurs_in_a_part() -> None:
    text = "--=_b1\n"
    raw = mail_bytes(mail(text=text, encoding="iso-2022-jp"), boundary="=_b1")
    assert b'boundary="=_b1"' not in raw
    assert parse(mail(text=text, encoding="iso-2022-jp")).get_body(("plain",)).get_content() == "--=_b1\r\n"


@settings(max_examples=300, deadline=None)
@given(address=st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+", fullmatch=True) | st.text(max_size=40))
def test_an_address_taken_as_it_is_is_what_parsing_it_would_give(address: str) -> None:
    assert envelope_address(address) == (parseaddr(address)[1] or address.strip())
