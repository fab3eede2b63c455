"""The SMTP adapter against a real SMTP server (the devstack sink, aiosmtpd): AUTH and STARTTLS as configured, and each
answer classified — a refused recipient fails the mail, our own bad login makes mails wait instead."""

import socket
import subprocess
from pathlib import Path

import pytest
from ordermesh_devstack.sandboxes.smtp_sink import SmtpSink, read_mails
from ordermesh_notify.adapters.smtp import MailRefused, OutgoingMail, SmtpTransport
from ordermesh_servicekit.consuming import TransientError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mail(to: str = "hanako@example.com") -> OutgoingMail:
    return OutgoingMail("<m1@ordermesh.example>", "shop@ordermesh.example", to, "ご注文確認", "本文", "<p>本文</p>")


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
    await SmtpTransport("127.0.0.1", auth_sink.port, username="shop", password="s3cret").send(mail())
    [received] = read_mails(auth_sink.maildir)
    assert (received["To"], received["Subject"], received["Message-ID"]) == ("hanako@example.com", "ご注文確認", "<m1@ordermesh.example>")


@pytest.mark.parametrize("login", [{"username": "shop", "password": "wrong"}, {}])
async def test_a_wrong_or_missing_login_makes_the_mail_wait_instead_of_failing_it_for_the_customer(auth_sink, login) -> None:
    with pytest.raises(TransientError, match="SMTP authentication failed \\(53[05]\\)"):
        await SmtpTransport("127.0.0.1", auth_sink.port, **login).send(mail())
    assert read_mails(auth_sink.maildir) == []


async def test_a_refused_recipient_fails_the_mail_with_the_servers_5xx_answer(auth_sink) -> None:
    with pytest.raises(MailRefused, match="^550 5.1.1 mailbox unavailable"):
        await SmtpTransport("127.0.0.1", auth_sink.port, username="shop", password="s3cret").send(mail("reject@example.com"))


async def test_starttls_and_auth_deliver_over_an_encrypted_session_and_a_plain_one_waits(tls_sink) -> None:
    await SmtpTransport("localhost", tls_sink.port, username="shop", password="s3cret", starttls=True).send(mail())
    assert len(read_mails(tls_sink.maildir)) == 1
    with pytest.raises(TransientError):
        await SmtpTransport("localhost", tls_sink.port, username="shop", password="s3cret", starttls=False).send(mail())
    assert len(read_mails(tls_sink.maildir)) == 1
