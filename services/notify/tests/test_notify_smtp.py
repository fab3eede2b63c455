"""The SMTP adapter against a real SMTP server (the devstack sink, aiosmtpd): AUTH and STARTTLS as configured, and each
answer classified — a refused recipient fails the mail, our own bad login makes mails wait instead; one connection
carries consecutive mails, and one the server ended is replaced."""

import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from ordermesh_devstack.sandboxes.smtp_sink import SmtpSink, read_mails
from ordermesh_notify.adapters.smtp import MailRefused, OutgoingMail, SmtpTransport
from ordermesh_servicekit.consuming import TransientError
from support import eventually


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mail(to: str = "hanako@example.com", message_id: str = "<m1@ordermesh.example>") -> OutgoingMail:
    return OutgoingMail(message_id, "shop@ordermesh.example", to, "ご注文確認", "本文", "<p>本文</p>")


async def send_once(transport: SmtpTransport, outgoing: OutgoingMail) -> None:
    try:
        await transport.send(outgoing)
    finally:
        await transport.close()


@pytest.fixture
def auth_sink(tmp_path: Path):
    with SmtpSink(tmp_path / "mail", free_port(), reject_recipients=True, auth=("shop", "s3cret")) as sink:
        yield sink


@pytest.fixture
def tls_sink(tmp_path: Path, monkeypatch):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this server's certificate, and only it
    with SmtpSink(tmp_path / "mail", free_port(), hostname="localhost", auth=("shop", "s3cret"), tls_cert=cert, tls_key=key) as sink:
        yield sink


async def test_a_server_requiring_auth_takes_the_mail_with_the_configured_login(auth_sink) -> None:
    await send_once(SmtpTransport("127.0.0.1", auth_sink.port, username="shop", password="s3cret"), mail())
    [received] = read_mails(auth_sink.maildir)
    assert (received["To"], received["Subject"], received["Message-ID"]) == ("hanako@example.com", "ご注文確認", "<m1@ordermesh.example>")


@pytest.mark.parametrize("login", [{"username": "shop", "password": "wrong"}, {}])
async def test_a_wrong_or_missing_login_makes_the_mail_wait_instead_of_failing_it_for_the_customer(auth_sink, login) -> None:
    with pytest.raises(TransientError, match="SMTP authentication failed \\(53[05]\\)"):
        await send_once(SmtpTransport("127.0.0.1", auth_sink.port, **login), mail())
    assert read_mails(auth_sink.maildir) == []


async def test_a_refused_recipient_fails_the_mail_with_the_servers_5xx_answer(auth_sink) -> None:
    with pytest.raises(MailRefused, match="^550 5.1.1 mailbox unavailable"):
        await send_once(SmtpTransport("127.0.0.1", auth_sink.port, username="shop", password="s3cret"), mail("reject@example.com"))


async def test_starttls_and_auth_deliver_over_an_encrypted_session_and_a_plain_one_waits(tls_sink) -> None:
    await send_once(SmtpTransport("localhost", tls_sink.port, username="shop", password="s3cret", starttls=True), mail())
    assert len(read_mails(tls_sink.maildir)) == 1
    with pytest.raises(TransientError):
        await send_once(SmtpTransport("localhost", tls_sink.port, username="shop", password="s3cret", starttls=False), mail())
    assert len(read_mails(tls_sink.maildir)) == 1


class Sessions:
    """An aiosmtpd handler that keeps every message and every session that said EHLO, and can answer MAIL with a
    given reply once."""

    def __init__(self) -> None:
        self.servers: list[SMTP] = []
        self.message_ids: list[str] = []
        self.next_mail_answer: str | None = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if server not in self.servers:
            self.servers.append(server)
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.next_mail_answer is not None:
            answer, self.next_mail_answer = self.next_mail_answer, None
            return answer
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        [message_id] = [line for line in envelope.content.decode().splitlines() if line.startswith("Message-ID:")]
        self.message_ids.append(message_id.split(": ", 1)[1])
        return "250 Message accepted for delivery"

    def open_sessions(self) -> list[SMTP]:
        return [server for server in self.servers if server.transport is not None]


@pytest.fixture
async def sessions() -> AsyncIterator[tuple[Sessions, Controller]]:
    handler = Sessions()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller
    finally:
        controller.stop()


async def test_consecutive_mails_go_over_one_connection_and_close_ends_it_with_quit(sessions) -> None:
    handler, controller = sessions
    transport = SmtpTransport("127.0.0.1", controller.port, local_hostname="notify.test")
    for n in range(3):
        await transport.send(mail(message_id=f"<m{n}@ordermesh.example>"))
    assert handler.message_ids == ["<m0@ordermesh.example>", "<m1@ordermesh.example>", "<m2@ordermesh.example>"]
    assert len(handler.servers) == 1
    await transport.close()
    await eventually(lambda: handler.open_sessions() == [], timeout=5, interval=0.02)


async def test_a_refused_recipient_leaves_the_connection_to_carry_the_next_mail(auth_sink) -> None:
    transport = SmtpTransport("127.0.0.1", auth_sink.port, username="shop", password="s3cret", connections=1)
    with pytest.raises(MailRefused):
        await transport.send(mail("reject@example.com"))
    await send_once(transport, mail())
    assert [received["To"] for received in read_mails(auth_sink.maildir)] == ["hanako@example.com"]


async def test_a_connection_the_server_dropped_is_replaced_for_the_next_mail(sessions) -> None:
    handler, controller = sessions
    transport = SmtpTransport("127.0.0.1", controller.port, local_hostname="notify.test")
    await transport.send(mail(message_id="<before@ordermesh.example>"))
    [server] = handler.servers
    controller.loop.call_soon_threadsafe(server.transport.close)
    await eventually(lambda: handler.open_sessions() == [], timeout=5, interval=0.02)

    await send_once(transport, mail(message_id="<after@ordermesh.example>"))
    assert handler.message_ids == ["<before@ordermesh.example>", "<after@ordermesh.example>"]
    assert len(handler.servers) == 2


async def test_a_421_on_a_kept_connection_sends_the_mail_on_a_new_one_and_a_421_on_a_new_one_makes_it_wait(sessions) -> None:
    handler, controller = sessions
    transport = SmtpTransport("127.0.0.1", controller.port, local_hostname="notify.test")
    await transport.send(mail(message_id="<first@ordermesh.example>"))
    handler.next_mail_answer = "421 4.3.2 service shutting down"
    await transport.send(mail(message_id="<second@ordermesh.example>"))
    assert handler.message_ids == ["<first@ordermesh.example>", "<second@ordermesh.example>"]
    assert len(handler.servers) == 2

    await transport.close()
    handler.next_mail_answer = "421 4.3.2 service shutting down"
    with pytest.raises(TransientError, match="SMTP 421"):
        await send_once(SmtpTransport("127.0.0.1", controller.port, local_hostname="notify.test"), mail())
    assert len(handler.message_ids) == 2


async def test_a_recipient_beyond_ascii_goes_with_smtputf8_and_waits_on_a_server_without_it(tmp_path: Path) -> None:
    with SmtpSink(tmp_path / "mail", free_port()) as sink:
        await send_once(SmtpTransport("127.0.0.1", sink.port, local_hostname="notify.test"), mail("山田@example.com"))
        [received] = read_mails(sink.maildir)
    assert (received["Subject"], received["Message-ID"]) == ("ご注文確認", "<m1@ordermesh.example>")
    assert received.get_body(("plain",)).get_content() == "本文"

    handler = Sessions()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    controller.start()
    try:
        with pytest.raises(TransientError, match="SMTP unavailable: SMTPNotSupported"):
            await send_once(SmtpTransport("127.0.0.1", controller.port, local_hostname="notify.test"), mail("山田@example.com"))
    finally:
        controller.stop()
    assert handler.message_ids == []


async def test_the_sink_receives_the_mail_as_composed_and_reads_back_its_japanese_parts(tmp_path: Path) -> None:
    outgoing = OutgoingMail(
        "<m2@ordermesh.example>", "京都茶舗 <shop@ordermesh.example>", "hanako@example.com", "【発送のお知らせ】" * 6,
        "山田 花子 様\n.\n発送しました。\n", "<p>山田 花子 様</p>", "iso-2022-jp",
    )
    with SmtpSink(tmp_path / "mail", free_port()) as sink:
        await send_once(SmtpTransport("127.0.0.1", sink.port, local_hostname="notify.test"), outgoing)
        [received] = read_mails(sink.maildir)
    assert received["Subject"] == "【発送のお知らせ】" * 6
    assert received["From"].addresses[0].display_name == "京都茶舗"
    assert received.get_body(("plain",)).get_content().splitlines() == ["山田 花子 様", ".", "発送しました。"]
    assert received.get_body(("html",)).get_content() == "<p>山田 花子 様</p>"
