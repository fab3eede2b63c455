"""The mail transport port and its SMTP adapter (aiosmtplib)."""

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import aiosmtplib

from ordermesh_servicekit.consuming import TransientError


@dataclass(frozen=True)
class OutgoingMail:
    """A mail to one recipient with a stable Message-ID."""

    message_id: str
    sender: str
    recipient: str
    subject: str
    text: str


class MailRefused(Exception):
    """The SMTP server refused the mail for good (a 5xx answer)."""


class MailTransport(Protocol):
    """Sends a mail; raises `MailRefused` for a permanent refusal and `TransientError` when it may pass."""

    async def send(self, mail: OutgoingMail) -> None:
        """Hands the mail to the mail server."""
        ...


class SmtpTransport:
    """Sends over SMTP; STARTTLS and AUTH when configured."""

    def __init__(
        self, host: str, port: int, *, username: str | None = None, password: str | None = None, starttls: bool = False
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls

    async def send(self, mail: OutgoingMail) -> None:
        message = EmailMessage()
        message["From"] = mail.sender
        message["To"] = mail.recipient
        message["Subject"] = mail.subject
        message["Message-ID"] = mail.message_id
        message["Date"] = formatdate(localtime=False)
        message.set_content(mail.text, charset="utf-8")
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._starttls,
                timeout=15,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise MailRefused("; ".join(f"{r.code} {r.message}" for r in error.recipients)) from error
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600:
                raise MailRefused(f"{error.code} {error.message}") from error
            raise TransientError(f"SMTP {error.code}") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise TransientError(f"SMTP unavailable: {type(error).__name__}") from error
