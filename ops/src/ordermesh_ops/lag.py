"""`ordermesh lag`: each service's consumer group, how far behind it is per topic and partition."""

import asyncio

import typer
from ordermesh_servicekit.lag import PartitionLag, group_lag

from .client import Connection
from .kafka import admin_client, reader
from .output import print_rows

SERVICE_GROUP_PREFIX = "ordermesh-"
TOOL_GROUP_PREFIXES = ("ordermesh-cli-", "ordermesh-demo-watcher-")


def is_service_group(group: str) -> bool:
    """Whether a consumer group is one of the services' (not a CLI's or the demo's passing group)."""
    return group.startswith(SERVICE_GROUP_PREFIX) and not group.startswith(TOOL_GROUP_PREFIXES)


async def consumer_lag(connection: Connection, groups: list[str] | None = None) -> list[PartitionLag]:
    """Lag of the named groups (default: every service group) on each partition they committed offsets for."""
    admin = admin_client(connection)
    offsets_reader = reader(connection)
    await admin.start()
    await offsets_reader.start()
    try:
        if groups is None:
            listed = await admin.list_consumer_groups()
            groups = sorted(g[0] for g in listed if is_service_group(g[0]))
        rows: list[PartitionLag] = []
        for group in groups:
            rows.extend(await group_lag(admin, offsets_reader, group))
        return rows
    finally:
        await offsets_reader.stop()
        await admin.close()


def summarize(rows: list[PartitionLag]) -> list[dict]:
    """Lag per group and topic (partitions summed), with the worst partition."""
    totals: dict[tuple[str, str], dict] = {}
    for row in rows:
        entry = totals.setdefault((row.group, row.topic), {"group": row.group, "topic": row.topic, "lag": 0, "worst_partition": None, "worst_lag": -1})
        entry["lag"] += row.lag
        if row.lag > entry["worst_lag"]:
            entry["worst_partition"], entry["worst_lag"] = row.partition, row.lag
    return list(totals.values())


def lag(
    group: list[str] = typer.Option(None, "--group", help="only this consumer group (repeatable)"),
    partitions: bool = typer.Option(False, "--partitions", help="one row per partition"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Shows each service's consumer lag per topic (and per partition with --partitions)."""
    rows = asyncio.run(consumer_lag(Connection.from_environment(), group or None))
    if as_json or partitions:
        print_rows([row.as_json() for row in rows], title="consumer lag per partition", as_json=as_json)
        return
    print_rows(summarize(rows), title="consumer lag per topic")
