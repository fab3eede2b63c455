"""`ordermesh outbox …`: rows a service's outbox relay moved aside because Kafka would never accept them.

Each service keeps its own (`outbox_failed`); a row is named `<service>:<id>`. `failed` lists them, `retry` puts
them back in the service's outbox (after the cause was fixed, e.g. the topic created or the size limit raised),
`discard` records that nothing more is needed, with the reason.
"""

import getpass
from typing import Any, Optional

import typer

from .client import Connection, get_json, post_json
from .output import console, print_rows

SERVICES = ("orders", "payments", "shipping", "points", "notify")
app = typer.Typer(help="Outbox rows Kafka refused for good, moved aside by the relay: list, re-queue, discard.", no_args_is_help=True)


def _services(connection: Connection, service: Optional[str]) -> list[str]:
    if service is not None:
        if service not in SERVICES:
            raise typer.BadParameter(f"{service!r} is not a service ({', '.join(SERVICES)})", param_hint="--service")
        return [service]
    chosen = [s for s in SERVICES if connection.service_urls.get(s)]
    if not chosen:
        raise SystemExit("no service addresses: set ORDERMESH_<SERVICE>_URL or run `make run`")
    return chosen


def failed_rows(connection: Connection, service: Optional[str] = None, status: str = "pending") -> list[dict[str, Any]]:
    """Moved-aside rows of one or every service, each with `service` and its CLI id `<service>:<id>`."""
    rows = []
    for name in _services(connection, service):
        for row in get_json(connection, name, "/api/outbox/failed", status=status)["rows"]:
            rows.append({"id": f"{name}:{row['id']}", "service": name, **{k: v for k, v in row.items() if k != "id"}})
    return rows


def _by_service(ids: list[str]) -> dict[str, list[int]]:
    chosen: dict[str, list[int]] = {}
    for text in ids:
        service, _, number = text.partition(":")
        if service not in SERVICES or not number.isdigit() or not 0 < int(number) < 2**63:
            raise typer.BadParameter(f"{text!r}: name a row as <service>:<id>, e.g. payments:42", param_hint="IDS")
        chosen.setdefault(service, []).append(int(number))
    return chosen


def decide(
    connection: Connection, action: str, ids: list[str], *, every: bool, service: Optional[str], by: str, reason: str
) -> list[dict[str, Any]]:
    """Re-queues (`retry`) or discards rows named by id, or every pending one (of `service`, if given)."""
    if bool(ids) == every:
        raise typer.BadParameter("name rows as <service>:<id>, or give --all")
    targets: dict[str, list[int] | None] = (
        {name: None for name in _services(connection, service)} if every else dict(_by_service(ids))
    )
    done = []
    for name, numbers in targets.items():
        body: dict[str, Any] = {"by": by, "reason": reason, **({"all": True} if numbers is None else {"ids": numbers})}
        answer = post_json(connection, name, f"/api/outbox/failed/{action}", body)
        for item in answer["requeued" if action == "retry" else "discarded"]:
            row = item if isinstance(item, dict) else {"id": item}
            done.append({**row, "id": f"{name}:{row['id']}"})
    return done


@app.command("failed")
def list_failed(
    service: Optional[str] = typer.Option(None, help="only this service"),
    status: str = typer.Option("pending", help="pending, requeued, discarded or all"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Lists rows the relays moved aside, oldest first per service, with Kafka's error (never the payload)."""
    rows = failed_rows(Connection.from_environment(), service, status)
    if as_json:
        print_rows(rows, as_json=True)
        return
    columns = ("id", "status", "failed_at", "topic", "type", "key", "size", "error")
    print_rows([{c: row[c] for c in columns} for row in rows], title=f"{len(rows)} outbox rows moved aside")


@app.command()
def retry(
    ids: list[str] = typer.Argument(None, help="rows as <service>:<id>"),
    every: bool = typer.Option(False, "--all", help="every pending row (of --service, if given)"),
    service: Optional[str] = typer.Option(None, help="with --all: only this service"),
    reason: str = typer.Option("", help="why (kept with the decision)"),
    by: str = typer.Option(None, "--by", help="who is acting (default: your user name)"),
) -> None:
    """Puts rows back at the end of their service's outbox, unchanged (consumers' inboxes absorb a copy)."""
    done = decide(Connection.from_environment(), "retry", ids or [], every=every, service=service, by=by or getpass.getuser(), reason=reason)
    console.print(f"re-queued {len(done)} outbox rows")
    if done:
        print_rows(done)


@app.command()
def discard(
    ids: list[str] = typer.Argument(None, help="rows as <service>:<id>"),
    reason: str = typer.Option(..., help="why nothing more is needed (recorded)"),
    every: bool = typer.Option(False, "--all", help="every pending row (of --service, if given)"),
    service: Optional[str] = typer.Option(None, help="with --all: only this service"),
    by: str = typer.Option(None, "--by", help="who is acting (default: your user name)"),
) -> None:
    """Records that rows need nothing more, with the reason; they stay in `outbox_failed` for the record."""
    done = decide(Connection.from_environment(), "discard", ids or [], every=every, service=service, by=by or getpass.getuser(), reason=reason)
    console.print(f"discarded {len(done)} outbox rows")
