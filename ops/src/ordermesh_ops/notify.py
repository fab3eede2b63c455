"""`ordermesh notify …`: staff commands and reads of the notify service."""

import asyncio
from pathlib import Path
from uuid import UUID

import typer

from ordermesh_contracts import (
    MailDevice,
    MailKind,
    PreviewMail,
    ResendMail,
    SaveMailTemplate,
    SendBulkMail,
    SendMessageToCustomer,
    SetOrderMailText,
    SetShopMailSettings,
    topics,
)

from . import client, output

app = typer.Typer(help="The notify service.", no_args_is_help=True)

ISSUED_BY = typer.Option("cli", "--by", help="Who sends the command.")


def _send(command) -> None:
    reply = asyncio.run(client.send_command(client.Connection.from_environment(), topics.NOTIFY_COMMANDS, command))
    raise typer.Exit(output.print_reply(reply))


@app.command()
def mails(order_id: UUID, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The mail log of an order: kind, masked recipient, subject, status, attempts, times."""
    rows = client.get_json(client.Connection.from_environment(), "notify", "/api/notify/mails", order_id=str(order_id))
    output.print_rows(rows, title=f"mails of {order_id}", as_json=as_json)


@app.command()
def preview(
    shop_id: str, order_id: UUID, kind: MailKind,
    device: str = typer.Option(None, help="pc or mobile; default the customer's."), by: str = ISSUED_BY,
) -> None:
    """Renders a mail for an order without sending it."""
    _send(PreviewMail(shop_id=shop_id, issued_by=by, order_id=order_id, mail_kind=kind, device=device))


@app.command()
def resend(shop_id: str, order_id: UUID, mail_id: UUID, by: str = ISSUED_BY) -> None:
    """Sends one logged mail again (remail)."""
    _send(ResendMail(shop_id=shop_id, issued_by=by, order_id=order_id, mail_id=mail_id))


@app.command()
def bulk(
    shop_id: str, kind: MailKind, order_ids: list[UUID],
    subject: str = typer.Option(None, help="Subject of a message_to_customer mail."),
    message: str = typer.Option(None, help="Text of a message_to_customer mail."),
    by: str = ISSUED_BY,
) -> None:
    """Sends one kind of mail to many orders; prints one result per order."""
    _send(SendBulkMail(shop_id=shop_id, issued_by=by, mail_kind=kind, order_ids=order_ids, subject=subject, message=message))


@app.command()
def message(shop_id: str, order_id: UUID, subject: str, text: str, by: str = ISSUED_BY) -> None:
    """Mails a free message to the customer of an order."""
    _send(SendMessageToCustomer(shop_id=shop_id, issued_by=by, order_id=order_id, subject=subject, message=text))


@app.command("order-text")
def order_text(shop_id: str, order_id: UUID, text: str, by: str = ISSUED_BY) -> None:
    """Sets text inserted into the order's later mails ("" removes it)."""
    _send(SetOrderMailText(shop_id=shop_id, issued_by=by, order_id=order_id, text=text))


@app.command()
def settings(
    shop_id: str,
    signature: str = typer.Option(None, help="Added to the end of every mail."),
    language: str = typer.Option(None, help="ja or en."),
    encoding: str = typer.Option(None, help="utf-8 or iso-2022-jp."),
    off: list[MailKind] = typer.Option([], "--off", help="Turn a mail kind off (repeatable)."),
    on: list[MailKind] = typer.Option([], "--on", help="Turn a mail kind on (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    by: str = ISSUED_BY,
) -> None:
    """Shows a shop's mail settings, or changes the ones given: every option left out keeps its value."""
    connection = client.Connection.from_environment()
    current = client.get_json(connection, "notify", "/api/notify/settings", shop_id=shop_id)
    if signature is None and language is None and encoding is None and not off and not on:
        output.print_rows([current], title=f"mail settings of {shop_id}", as_json=as_json)
        return
    if both := set(off) & set(on):
        raise typer.BadParameter(f"turned both on and off: {', '.join(sorted(k.value for k in both))}")
    disabled = (set(current["disabled_kinds"]) | {k.value for k in off}) - {k.value for k in on}
    _send(SetShopMailSettings(
        shop_id=shop_id, issued_by=by,
        signature=current["signature"] if signature is None else signature,
        language=language or current["language"],
        encoding=encoding or current["encoding"],
        disabled_kinds=sorted(disabled),
    ))


@app.command()
def template(
    shop_id: str, kind: MailKind, subject: str,
    text_file: Path = typer.Argument(..., help="Jinja2 template of the text part."),
    html_file: Path = typer.Option(None, "--html", help="Jinja2 template of the HTML part."),
    device: MailDevice = typer.Option(MailDevice.ANY, help="pc, mobile or any."),
    by: str = ISSUED_BY,
) -> None:
    """Saves a shop's template for a mail kind and device (refused with the reason if it does not render)."""
    _send(SaveMailTemplate(
        shop_id=shop_id, issued_by=by, mail_kind=kind, device=device, subject=subject,
        text=text_file.read_text("utf-8"), html=html_file.read_text("utf-8") if html_file else None,
    ))
