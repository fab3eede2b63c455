"""Local SMTP sink that stores every accepted message as an .eml file in a maildir-like folder."""

import argparse
import email.policy
import logging
import os
import signal
import ssl
import threading
import uuid
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

logger = logging.getLogger(__name__)

REJECT_PREFIX = "reject"


class _MaildirHandler:
    """aiosmtpd handler writing each message to `<maildir>/tmp` then moving it into `<maildir>/new`."""

    def __init__(self, maildir: Path, reject_recipients: bool) -> None:
        self.maildir = maildir
        self.reject_recipients = reject_recipients

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.reject_recipients and address.lower().startswith(REJECT_PREFIX):
            logger.info("rejecting recipient %s", address)
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        envelope_headers = (
            f"X-Envelope-From: {envelope.mail_from}\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode("utf-8")
        name = f"{uuid.uuid4()}.eml"
        tmp_path = self.maildir / "tmp" / name
        with open(tmp_path, "wb") as fh:
            fh.write(envelope_headers + content)
        # Readers only ever look in new/, so they never see a half-written message.
        os.replace(tmp_path, self.maildir / "new" / name)
        logger.info("stored mail from %s to %s as %s", envelope.mail_from,
                    ", ".join(envelope.rcpt_tos), name)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on 127.0.0.1:`port` storing mail under `maildir` (runs in its own thread).

    With `reject_recipients=True`, RCPT TO addresses starting with "reject"
    are refused with `550 5.1.1 mailbox unavailable`. With `auth=(user, password)`
    every mail needs AUTH (PLAIN or LOGIN) with those credentials; with `tls_cert`
    and `tls_key` every session must STARTTLS first.
    """

    def __init__(self, maildir: Path, port: int, *, hostname: str = "127.0.0.1",
                 reject_recipients: bool = False, auth: tuple[str, str] | None = None,
                 tls_cert: Path | None = None, tls_key: Path | None = None) -> None:
        self.maildir = Path(maildir)
        self.port = port
        self.hostname = hostname
        self.reject_recipients = reject_recipients
        self.auth = auth
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self._controller: Controller | None = None

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: object) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and self.auth is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.auth)
        return AuthResult(success=ok, handled=False)

    def _security_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.tls_cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls_cert, self.tls_key)
            options |= {"tls_context": context, "require_starttls": True}
        if self.auth is not None:
            options |= {"authenticator": self._authenticate, "auth_required": True,
                        "auth_require_tls": self.tls_cert is not None}
        return options

    def start(self) -> None:
        """Create the maildir folders and start serving."""
        for sub in ("tmp", "new", "cur"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        handler = _MaildirHandler(self.maildir, self.reject_recipients)
        smtp_options: dict[str, Any] = {"enable_SMTPUTF8": True, **self._security_options()}
        self._controller = Controller(handler, hostname=self.hostname, port=self.port, **smtp_options)
        self._controller.start()
        logger.info("SMTP sink listening on %s:%d, storing mail in %s", self.hostname, self.port,
                    self.maildir)

    def stop(self) -> None:
        """Stop serving; safe to call when not started."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
            logger.info("SMTP sink on %s:%d stopped", self.hostname, self.port)

    def __enter__(self) -> "SmtpSink":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def read_mails(maildir: Path) -> list[EmailMessage]:
    """Parse every delivered message in `<maildir>/new`, oldest first."""
    new = Path(maildir) / "new"
    if not new.is_dir():
        return []
    paths = sorted(new.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    parser = BytesParser(policy=email.policy.default)
    mails = []
    for path in paths:
        with open(path, "rb") as fh:
            message = parser.parse(fh)
        assert isinstance(message, EmailMessage)
        mails.append(message)
    return mails


def main(argv: list[str] | None = None) -> None:
    """Run the sink: `python -m ordermesh_devstack.sandboxes.smtp_sink --port N --maildir DIR`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--reject-recipients", action="store_true",
                        help="answer 550 for recipients whose address starts with 'reject'")
    parser.add_argument("--auth-user", help="require SMTP AUTH with this user (and --auth-password)")
    parser.add_argument("--auth-password", help="the password SMTP AUTH requires")
    parser.add_argument("--tls-cert", type=Path, help="certificate (PEM) offered by STARTTLS, which becomes required")
    parser.add_argument("--tls-key", type=Path, help="private key (PEM) of --tls-cert")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiosmtpd logs every SMTP command at INFO on "mail.log"; that drowns out our own lines.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.getLogger().level))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    auth = (args.auth_user, args.auth_password or "") if args.auth_user else None
    sink = SmtpSink(args.maildir, args.port, hostname=args.host,
                    reject_recipients=args.reject_recipients, auth=auth,
                    tls_cert=args.tls_cert, tls_key=args.tls_key)
    sink.start()
    try:
        # Short waits so the signal handlers get a chance to run in the main thread.
        while not stop.wait(0.5):
            pass
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
