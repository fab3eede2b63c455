"""The mail transport port and its SMTP adapter (aiosmtplib)."""

from typing import Protocol

import aiosmtplib

from ordermesh_servicekit.consuming import TransientError
from ordermesh_servicekit.outside import OutsideCalls

from .mime import OutgoingMail, build_message

__all__ = ["MailDeferred", "MailRefused", "MailTransport", "OutgoingMail", "SmtpTransport"]

AUTH_PROBLEMS = frozenset({530, 535})
"""Answers about the service's own login (authentication required, credentials invalid), not about a mail."""


class MailRefused(Exception):
    """The SMTP server refused the mail for good (a 5xx answer)."""


class MailDeferred(Exception):
    """The SMTP server deferred this recipient only (a 4xx answer to RCPT): others may still go out."""


class MailTransport(Protocol):
    """Sends a mail; raises `MailRefused` (for good), `MailDeferred` (this recipient, for now) or `TransientError`."""

    async def send(self, mail: OutgoingMail) -> None:
        """Hands the mail to the mail server."""
        ...


class SmtpTransport:
    """Sends over SMTP; STARTTLS and AUTH when configured."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10,
        calls: OutsideCalls | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        self._calls = calls or OutsideCalls()

    async def send(self, mail: OutgoingMail) -> None:
        """Sends one mail; classifies the server's answer (one outside call: sent, refused or deferred)."""
        async with self._calls.observe("smtp", "send") as call:
            try:
                await self._send(mail)
            except (MailRefused, MailDeferred) as answer:
                call.outcome = "refused" if isinstance(answer, MailRefused) else "deferred"
                call.fields["reason"] = str(answer)[:200]
                raise
            call.outcome = "sent"

    async def _send(self, mail: OutgoingMail) -> None:
        try:
            await aiosmtplib.send(
                build_message(mail),
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._starttls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            reason = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
            if all(500 <= r.code < 600 for r in error.recipients):
                raise MailRefused(reason) from error
            raise MailDeferred(reason) from error
        except aiosmtplib.SMTPResponseException as error:
            if error.code in AUTH_PROBLEMS:
                # Our credentials, not the customer's address: every mail would fail alike, so they wait for a fix.
                raise TransientError(f"SMTP authentication failed ({error.code}): check the SMTP user and password") from error
            if 500 <= error.code < 600:
                raise MailRefused(f"{error.code} {error.message}") from error
            raise TransientError(f"SMTP {error.code}") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise TransientError(f"SMTP unavailable: {type(error).__name__}") from error
