"""The mail transport port and its SMTP adapter (aiosmtplib), which keeps its connections open between mails."""

import asyncio
import contextlib
import socket
from typing import Protocol

import aiosmtplib

from ordermesh_servicekit.consuming import TransientError
from ordermesh_servicekit.outside import OutsideCalls

from .mime import OutgoingMail, envelope_address, mail_bytes

__all__ = ["MailDeferred", "MailRefused", "MailTransport", "OutgoingMail", "SmtpTransport"]

AUTH_PROBLEMS = frozenset({530, 535})
"""Answers about the service's own login (authentication required, credentials invalid), not about a mail."""

CLOSING = 421
"""The server's answer when it ends the session (idle too long, shutting down): nothing of the mail was taken."""


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
    """Sends over SMTP; STARTTLS and AUTH when configured.

    A connection (with its EHLO, STARTTLS and AUTH) is kept open and carries the next mail; at most `connections`
    are open at once, each carrying one mail at a time. A connection the server ended meanwhile (it closed it, or
    answers 421) is replaced by a new one for the mail at hand. `close` ends the idle ones (at the service's stop).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10,
        connections: int = 4,
        local_hostname: str | None = None,
        calls: OutsideCalls | None = None,
    ) -> None:
        """`local_hostname` is the name given in EHLO (default: this host's fully qualified name, looked up once)."""
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        self._local_hostname = local_hostname
        self._calls = calls or OutsideCalls()
        self._free_connections = asyncio.Semaphore(connections)
        self._idle: list[aiosmtplib.SMTP] = []
        self._closed = False

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

    async def close(self) -> None:
        """Ends the idle connections with QUIT; one carrying a mail now is closed once its mail is done."""
        self._closed = True
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit(timeout=min(self._timeout, 2))
            client.close()

    async def _send(self, mail: OutgoingMail) -> None:
        try:
            await self._transmit(envelope_address(mail.sender), envelope_address(mail.recipient), mail_bytes(mail))
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

    async def _transmit(self, sender: str, recipient: str, message: bytes) -> None:
        """Sends `message` on an idle connection, or a new one; a connection the server ended since its last mail is
        replaced once (a new connection failing alike fails the mail)."""
        async with self._free_connections:
            client = self._idle_connection()
            kept = client is not None
            try:
                if client is None:
                    client = await self._connect()
                try:
                    await _deliver(client, sender, recipient, message)
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException) as error:
                    if not (kept and _ends_session(error)):
                        raise
                    # Mostly a session the server ended while idle, before this mail. Had it dropped the connection
                    # after taking the mail, the mail goes out twice with one Message-ID, as after any lost answer.
                    client.close()
                    client = None
                    client = await self._connect()
                    await _deliver(client, sender, recipient, message)
            except BaseException as error:
                if client is not None:
                    self._release(client, reusable=_leaves_session_clean(error))
                raise
            self._release(client, reusable=True)

    def _idle_connection(self) -> aiosmtplib.SMTP | None:
        """The connection used last that is still open (the most recently used one is the least likely to have been
        dropped); None if there is none."""
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
            client.close()
        return None

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            start_tls=self._starttls,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )
        await client.connect()
        return client

    def _release(self, client: aiosmtplib.SMTP, *, reusable: bool) -> None:
        if reusable and not self._closed and client.is_connected:
            self._idle.append(client)
        else:
            client.close()


async def _deliver(client: aiosmtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    """One mail's envelope and content on an open connection; an address beyond ASCII needs the server's SMTPUTF8."""
    options = []
    if not (sender + recipient).isascii():
        try:
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            supported = client.supports_extension("smtputf8")
        except aiosmtplib.SMTPHeloError:
            supported = False  # a server without EHLO has no extensions
        if not supported:
            raise aiosmtplib.SMTPNotSupported("an address is not ASCII and the server does not support SMTPUTF8")
        options.append("SMTPUTF8")
    await client.sendmail(sender, [recipient], message, mail_options=options)


def _ends_session(error: Exception) -> bool:
    """Whether the server ended the connection rather than answered about the mail."""
    return isinstance(error, aiosmtplib.SMTPServerDisconnected) or (
        isinstance(error, aiosmtplib.SMTPResponseException) and error.code == CLOSING
    )


def _leaves_session_clean(error: BaseException) -> bool:
    """Whether a connection can carry the next mail after `error`: after a refusal of the mail or its recipient,
    aiosmtplib has reset the envelope (RSET); after a timeout, a cancellation or a lost connection it cannot."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return True
    return isinstance(error, aiosmtplib.SMTPResponseException) and error.code != CLOSING
