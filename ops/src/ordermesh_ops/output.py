"""Printing replies and records for staff: Rich tables on a terminal, JSON with --json."""

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
REPLIES_AS_JSON = {"on": False}
"""Set by `ordermesh --json`: command replies are printed as their JSON, for scripts."""


def write_what_cannot_be_encoded_escaped() -> None:
    """Has stdout and stderr write a character their encoding cannot take (a lone surrogate of a hostile message, kept
    in a dead letter) as its backslash escape instead of failing the command: in JSON output that is the character's
    own JSON escape, so the JSON still reads back to the same text."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def print_reply(reply: dict[str, Any]) -> int:
    """Prints a command's reply (as JSON after `ordermesh --json`); returns the exit code (0 accepted, 1 rejected)."""
    if REPLIES_AS_JSON["on"]:
        print(json.dumps(reply, ensure_ascii=False, default=str))
        return 1 if reply["type"] == "CommandRejected" else 0
    if reply["type"] == "CommandRejected":
        console.print(f"[red]rejected[/red] {reply.get('command_type')}: " + "; ".join(reply["reasons"]))
        return 1
    console.print(f"[green]accepted[/green] {reply['command_type']} by {reply['service']}")
    if reply.get("results"):
        print_rows(reply["results"], title="results")
    if reply.get("details"):
        console.print_json(json.dumps(reply["details"], default=str))
    return 0


def print_rows(rows: list[dict[str, Any]], *, title: str = "", as_json: bool = False) -> None:
    """Prints rows as a table (or JSON)."""
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table(title=title)
    columns = list(rows[0]) if rows else []
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[str(row.get(c, "")) for c in columns])
    console.print(table)
