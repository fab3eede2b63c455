"""Builds the MIME message: multipart/alternative (text + HTML), UTF-8, or ISO-2022-JP when every character fits."""

from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate

ISO_2022_JP = "iso-2022-jp"
UTF_8 = "utf-8"


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


def build_message(mail: OutgoingMail) -> Message:
    """The message as it goes over SMTP."""
    charset = charset_for(mail)
    parts = [MIMEText(mail.text, "plain", charset)]
    if mail.html is not None:
        parts.append(MIMEText(mail.html, "html", charset))
    if len(parts) == 1:
        message: Message = parts[0]
    else:
        message = MIMEMultipart("alternative")
        for part in parts:
            message.attach(part)
    message["From"] = mail.sender
    message["To"] = mail.recipient
    message["Subject"] = Header(mail.subject, charset, header_name="Subject")
    message["Message-ID"] = mail.message_id
    message["Date"] = formatdate(localtime=False)
    return message
