"""`ordermesh-dev`: run the whole suite locally with demo traffic, or just the suite, until Ctrl-C (or SIGTERM, or the terminal closes)."""

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.columns import Columns
from rich.console import Group
from rich.live import Live
from rich.table import Table

from ordermesh_contracts import Stage

from .demo import Watcher, completing, publish_orders
from .live import Monitor
from .stack import SERVICES, LocalStack, StackConfig

STAGE_ORDER = ["submitted", *[stage.value for stage in Stage]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ordermesh-dev", description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=Path(".run"), help="where data and logs go (default .run)")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="the suite plus a demo shop publishing orders, with a live view")
    run.add_argument("--orders", type=int, default=None, help="publish this many orders (default: until Ctrl-C)")
    run.add_argument("--rate", type=float, default=10.0, help="orders per second (default 10)")
    run.add_argument("--exit-when-done", action="store_true", help="exit once every order completed or got stuck")
    run.add_argument("--timeout", type=float, default=300.0, help="seconds an order may take before it counts as stuck")
    run.add_argument(
        "--cards-only", action="store_true",
        help="card orders only, all expected to complete (default: a mix of methods, some stopping for staff)",
    )
    commands.add_parser("up", help="the suite only, until Ctrl-C")
    return parser


def _view(watcher: Watcher, monitor: Monitor, started: float, published: int) -> Group:
    stages = watcher.stages()
    orders = Table(title=f"ordermesh — {len(watcher.tracks)} orders in the system ({published} from the demo shop)")
    for stage in STAGE_ORDER:
        orders.add_column(stage.replace("_", " "), justify="right")
    orders.add_row(*[str(stages.get(stage, 0)) for stage in STAGE_ORDER])
    elapsed = max(time.monotonic() - started, 1e-6)
    orders.caption = (
        f"completed {watcher.completed()} · {watcher.completed() / elapsed:.1f} orders/s · rejected {watcher.rejected} · "
        "orders waiting for staff: `ordermesh orders stuck --older-than 1m`"
    )
    services = Table(title="services")
    for column in ("service", "health", "consumer lag"):
        services.add_column(column)
    for name in monitor.service_ports:
        health = monitor.health.get(name, "…")
        services.add_row(name, health if health == "ready" else f"[red]{health}[/red]", str(monitor.lag.get(name, "…")))
    letters = Table(title=f"dead letters: {watcher.dead_letters}")
    letters.add_column("topic")
    letters.add_column("count", justify="right")
    for topic, count in sorted(watcher.dead_letters_by_topic.items()):
        letters.add_row(topic, f"[red]{count}[/red]")
    return Group(orders, Columns([services, letters]))


async def _run(args: argparse.Namespace, console: Console) -> int:
    stack = LocalStack(StackConfig(run_dir=args.run_dir.resolve()))
    try:
        console.print("starting Kafka, PostgreSQL, sandboxes and the five services…")
        await stack.start()
        console.print(f"suite ready; logs in {args.run_dir / 'logs'}")
        console.print(
            f"operations console: [bold]{stack.console_url}[/bold] — log in as [bold]admin[/bold] with the password in "
            f"{args.run_dir / 'console-admin-password'}"
        )
        if args.command == "up":
            await asyncio.Event().wait()
        watcher = Watcher(stack.bootstrap, security=stack.kafka_security)
        await watcher.start()
        monitor = Monitor(
            stack.bootstrap, {name: stack.processes[name].http_port for name in SERVICES}, security=stack.kafka_security
        )
        monitor.start()
        publishing = asyncio.create_task(
            publish_orders(stack.bootstrap, watcher, args.orders, args.rate, mixed=not args.cards_only, **stack.kafka_security)
        )
        expected = (args.orders if args.cards_only else completing(args.orders)) if args.orders else 0
        started = time.monotonic()
        last_progress = started
        last_completed = 0
        with Live(_view(watcher, monitor, started, 0), console=console, refresh_per_second=2, transient=False) as live:
            while True:
                await asyncio.sleep(0.5)
                live.update(_view(watcher, monitor, started, watcher.published))
                if watcher.completed() != last_completed:
                    last_completed, last_progress = watcher.completed(), time.monotonic()
                if args.exit_when_done and publishing.done():
                    if watcher.completed() >= expected or time.monotonic() - last_progress > args.timeout:
                        break
        published = await publishing
        await monitor.stop()
        await watcher.stop()
        completed = watcher.completed()
        print()
        print(
            f"demo: {published} orders published, {len(watcher.tracks)} in the system, {completed} completed "
            f"(of {expected} expected to), {watcher.dead_letters} dead-lettered"
        )
        return 0 if completed == expected and watcher.dead_letters == 0 else 1
    finally:
        await asyncio.to_thread(stack.stop)


def _hang_up(task: asyncio.Task) -> None:
    """The terminal was closed: stop everything as Ctrl-C would, writing nowhere (the terminal is gone)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (1, 2):
        os.dup2(devnull, stream)
    os.close(devnull)
    task.cancel()


def main(argv: list[str] | None = None) -> None:
    """Entry point of `ordermesh-dev`."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    console = Console()
    loop = asyncio.new_event_loop()
    main_task = loop.create_task(_run(args, console))
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, main_task.cancel)
    loop.add_signal_handler(signal.SIGHUP, _hang_up, main_task)
    try:
        code = loop.run_until_complete(main_task)
    except asyncio.CancelledError:
        console.print("stopped; everything shut down")
        code = 0
    finally:
        loop.close()
    sys.exit(code)
