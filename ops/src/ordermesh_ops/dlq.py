"""`ordermesh dlq …`: list, show, replay and discard dead letters."""

import asyncio
import getpass
from typing import Optional

import typer

from . import deadletters
from .client import Connection
from .output import console, print_rows
from .timespec import parse_since

app = typer.Typer(help="Dead letters: what consumers could not process, with the reason.", no_args_is_help=True)


def _since(text: Optional[str]):
    if text is None:
        return None
    try:
        return parse_since(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--since") from None


def _select(
    ids: list[str], topic: Optional[str], since: Optional[str], message_type: Optional[str],
    error_class: Optional[str], order_id: Optional[str], every: bool,
) -> list[deadletters.DeadLetter]:
    """The dead letters named by id, or the pending ones a filter selects (a filter or --all is required)."""
    connection = Connection.from_environment()
    if ids:
        try:
            return [asyncio.run(deadletters.find(connection, x)) for x in ids]
        except LookupError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
    if not (topic or since or message_type or error_class or order_id or every):
        raise typer.BadParameter("name dead letters by id, or select them with --topic/--since/--type/--error-class/--order, or --all")
    try:
        letters = asyncio.run(deadletters.list_dead_letters(connection, topic=topic, since=_since(since), status="pending"))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--topic") from None
    summaries = [(x, x.summary()) for x in letters]
    return [
        x for x, s in summaries
        if (message_type is None or s["type"] == message_type)
        and (error_class is None or s["error_class"] == error_class)
        and (order_id is None or s["order_id"] == order_id)
    ]


@app.command("list")
def list_letters(
    topic: Optional[str] = typer.Option(None, help="original topic (or its .dlq)"),
    since: Optional[str] = typer.Option(None, help="failed since: 30m, 2h, 1d or an ISO date-time"),
    status: Optional[str] = typer.Option(None, help="pending, replayed or discarded"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Lists dead letters, oldest first, with their reason and what staff did about them."""
    try:
        letters = asyncio.run(
            deadletters.list_dead_letters(Connection.from_environment(), topic=topic, since=_since(since), status=status)
        )
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--topic") from None
    if as_json:
        print_rows([x.summary() for x in letters], as_json=True)
        return
    columns = ("id", "status", "failed_at", "group", "type", "order_id", "error_class", "reason")
    print_rows([{c: x.summary()[c] for c in columns} for x in letters], title=f"{len(letters)} dead letters")


@app.command()
def show(dead_letter_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Shows one dead letter: headers, reason, and its payload with personal data redacted."""
    try:
        letter = asyncio.run(deadletters.find(Connection.from_environment(), dead_letter_id))
    except LookupError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    detail = letter.detail()
    if as_json:
        print_rows([detail], as_json=True)
        return
    console.print(f"[bold]{detail['id']}[/bold] · {detail['status']} · {detail['type']} from {detail['original_topic']}")
    console.print(f"[red]{detail['error_class']}[/red]: {detail['reason']}")
    print_rows([{"header": k, "value": v} for k, v in detail["headers"].items()], title="headers")
    print_rows([detail["payload"]] if isinstance(detail["payload"], dict) else [{"payload": detail["payload"]}], as_json=True)


# The selection options of replay and discard (typer reads these declarations; each command gets its own values).
IDS = typer.Argument(None, help="dead letter ids (<topic>.dlq:<partition>:<offset>)")
TOPIC = typer.Option(None, help="every pending dead letter of this original topic")
SINCE = typer.Option(None, help="pending dead letters failed since (30m, 2h, ISO)")
TYPE = typer.Option(None, "--type", help="only this message type")
ERROR_CLASS = typer.Option(None, help="only this error class")
ORDER = typer.Option(None, "--order", help="only this order")
EVERY = typer.Option(False, "--all", help="every pending dead letter")
BY = typer.Option(None, "--by", help="who is acting (default: your user name)")


def _act(action, letters: list[deadletters.DeadLetter], by: Optional[str], reason: str) -> list[deadletters.DeadLetter]:
    """Runs `deadletters.replay` or `.discard` on the selected letters as `by` (default: the user); ValueError is the
    caller's to report."""
    return asyncio.run(action(Connection.from_environment(), letters, by=by or getpass.getuser(), reason=reason))


@app.command()
def replay(
    ids: list[str] = IDS,
    topic: Optional[str] = TOPIC,
    since: Optional[str] = SINCE,
    message_type: Optional[str] = TYPE,
    error_class: Optional[str] = ERROR_CLASS,
    order_id: Optional[str] = ORDER,
    every: bool = EVERY,
    reason: str = typer.Option("", help="why (kept with the decision)"),
    by: str = BY,
) -> None:
    """Publishes dead letters again to their original topic, unchanged (same event id: inboxes absorb duplicates)."""
    letters = _select(ids or [], topic, since, message_type, error_class, order_id, every)
    try:
        done = _act(deadletters.replay, letters, by, reason)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    console.print(f"replayed {len(done)} dead letters")
    if done:
        print_rows([{k: x.summary()[k] for k in ("id", "original_topic", "type", "order_id")} for x in done])


@app.command()
def discard(
    ids: list[str] = IDS,
    reason: str = typer.Option(..., help="why nothing more is needed (recorded)"),
    topic: Optional[str] = TOPIC,
    since: Optional[str] = SINCE,
    message_type: Optional[str] = TYPE,
    error_class: Optional[str] = ERROR_CLASS,
    order_id: Optional[str] = ORDER,
    every: bool = EVERY,
    by: str = BY,
) -> None:
    """Records that dead letters need nothing more, with the reason; they stay on their topic for the record."""
    letters = _select(ids or [], topic, since, message_type, error_class, order_id, every)
    try:
        done = _act(deadletters.discard, letters, by, reason)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--reason") from None
    console.print(f"discarded {len(done)} dead letters")
