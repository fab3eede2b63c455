"""Composes the mail's bytes: multipart/alternative (text + HTML), UTF-8, or ISO-2022-JP when every character fits.

Written out directly rather than through the stdlib `email` package, whose message objects and generator cost more
than the rest of sending a mail. What goes out is 7-bit: UTF-8 parts in base64, an ISO-2022-JP part as it is (base64
only when a line would exceed 998 octets or it holds a NUL or a bare CR), headers that are not plain printable ASCII
as RFC 2047 encoded words, every line ending in CRLF.
"""

import base64
import os
import re
import time
from dataclasses import dataclass
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache

ISO_2022_JP = "iso-2022-jp"
UTF_8 = "utf-8"

_CRLF = b"\r\n"
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_PLAIN_HEADER = re.compile(r"[\x20-\x7e]*")
_BARE_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
_MAX_LINE = 998
_SHORT_SUBJECT = 78 - len("Subject: ")
# Octets of text per encoded word, so that each folded header line stays within 78 characters.
_WORD_OCTETS = {UTF_8: 42, ISO_2022_JP: 36}


@dataclass(frozen=True)
class OutgoingMail:
    """A mail to one recipient with a stable Message-ID, and the charset the shop prefers."""

    message_id: str
    sender: str
    recipient: str
    subject: str
    text: str
    html: str | None = None
    encoding: str = UTF_8


def charset_for(mail: OutgoingMail) -> str:
    """ISO-2022-JP when the shop asks for it and every character fits; otherwise UTF-8."""
    if mail.encoding != ISO_2022_JP:
        return UTF_8
    try:
        for part in (mail.subject, mail.text, mail.html or ""):
            part.encode(ISO_2022_JP)
    except UnicodeEncodeError:
        return UTF_8
    return ISO_2022_JP


def envelope_address(address: str) -> str:
    """The bare address of a header's address (`Shop <shop@example.com>` → `shop@example.com`), for MAIL and RCPT."""
    if _BARE_ADDRESS.fullmatch(address):
        return address  # nearly every address: parsing it would give it back as it is
    return parseaddr(address)[1] or address.strip()


def mail_bytes(mail: OutgoingMail, *, date: str | None = None, boundary: str | None = None) -> bytes:
    """The message as it goes over SMTP (`date`, an RFC 5322 date, defaults to now; `boundary` to a random one).

    Raises `UnicodeEncodeError` for text UTF-8 cannot carry (a lone surrogate), as the `email` package did.
    """
    charset = charset_for(mail)
    headers = [
        b"From: " + _address_header(mail.sender, charset),
        b"To: " + _address_header(mail.recipient, charset),
        b"Subject: " + _subject_header(mail.subject, charset),
        b"Message-ID: " + _address_header(mail.message_id, charset),
        b"Date: " + (date or _now()).encode("ascii"),
        b"MIME-Version: 1.0",
    ]
    text_headers, text_body = _part("plain", mail.text, charset)
    if mail.html is None:
        return _CRLF.join([*headers, *text_headers, b"", text_body])
    html_headers, html_body = _part("html", mail.html, charset)
    separator = _boundary(boundary, text_body, html_body)
    delimiter = b"--" + separator
    headers.append(b'Content-Type: multipart/alternative; boundary="' + separator + b'"')
    return _CRLF.join([
        *headers, b"",
        delimiter, *text_headers, b"", text_body,
        delimiter, *html_headers, b"", html_body,
        delimiter + b"--", b"",
    ])


def _part(subtype: str, content: str, charset: str) -> tuple[list[bytes], bytes]:
    """A body part's headers and its encoded content, whose last line break (if any) belongs to the delimiter after it."""
    content_type = f'Content-Type: text/{subtype}; charset="{charset}"'.encode("ascii")
    data = content.encode(charset)
    if charset == ISO_2022_JP and _fits_7bit(data):
        return [content_type, b"Content-Transfer-Encoding: 7bit"], _LINE_ENDINGS.sub(_CRLF, data)
    encoded = base64.encodebytes(data).replace(b"\n", _CRLF)
    return [content_type, b"Content-Transfer-Encoding: base64"], encoded


def _fits_7bit(data: bytes) -> bool:
    if b"\x00" in data or b"\r" in data:
        return False
    return all(len(line) <= _MAX_LINE for line in data.split(b"\n"))


def _boundary(chosen: str | None, *parts: bytes) -> bytes:
    # "=_" never occurs in base64; a 7-bit ISO-2022-JP part could, in principle, hold any line.
    while True:
        boundary = (chosen or "=_" + os.urandom(12).hex()).encode("ascii")
        if not any(boundary in part for part in parts):
            return boundary
        chosen = None


def _address_header(value: str, charset: str) -> bytes:
    """An address (or Message-ID) as a header value: as it is when plain ASCII, else its display name (or, for a bare
    address, the whole of it) in encoded words."""
    if _PLAIN_HEADER.fullmatch(value):
        return value.encode("ascii")
    name, address = parseaddr(value)
    if name and address and _PLAIN_HEADER.fullmatch(address):
        return formataddr((name, address), charset).encode("ascii")
    return _encoded_words(value, charset)


def _subject_header(subject: str, charset: str) -> bytes:
    if len(subject) <= _SHORT_SUBJECT and _PLAIN_HEADER.fullmatch(subject) and "=?" not in subject:
        return subject.encode("ascii")
    return _encoded_words(subject, charset)


def _encoded_words(text: str, charset: str) -> bytes:
    """`text` as RFC 2047 B-encoded words of whole characters, one per folded line."""
    prefix = f"=?{charset}?b?".encode("ascii")
    limit = _WORD_OCTETS[charset]
    words = [prefix + base64.b64encode(chunk) + b"?=" for chunk in _chunks(text, charset, limit)]
    return b"\r\n ".join(words) or prefix + b"?="


def _chunks(text: str, charset: str, limit: int) -> list[bytes]:
    """`text` encoded in pieces of whole characters, each at most `limit` octets (an ISO-2022-JP piece starts and ends
    in ASCII, as an encoded word must)."""
    if charset == UTF_8:
        data = text.encode(UTF_8)
        chunks, start = [], 0
        while len(data) - start > limit:
            end = start + limit
            while data[end] & 0xC0 == 0x80:  # a continuation octet: back to the start of its character
                end -= 1
            chunks.append(data[start:end])
            start = end
        if start < len(data):
            chunks.append(data[start:])
        return chunks
    chunks, current = [], ""
    for character in text:
        if current and len((current + character).encode(charset)) > limit:
            chunks.append(current.encode(charset))
            current = ""
        current += character
    if current:
        chunks.append(current.encode(charset))
    return chunks


def _now() -> str:
    return _date_of(int(time.time()))


@lru_cache(maxsize=1)
def _date_of(second: int) -> str:
    return formatdate(second, localtime=False)
