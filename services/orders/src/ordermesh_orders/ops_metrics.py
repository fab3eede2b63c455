"""Gauges of the orders service read from its tables: orders per stage and orders not progressing."""

import asyncio
import contextlib
from datetime import timedelta

import structlog
from prometheus_client import Gauge

from ordermesh_contracts import Stage
from ordermesh_servicekit.database import TRANSIENT_DB_ERRORS

from . import store_ops


class OrderGauges:
    """Refreshes `ordermesh_orders{stage}` and `ordermesh_orders_not_progressing{stage}` every `interval` seconds."""

    def __init__(self, registry, pool_provider, *, stuck_after: timedelta, interval: float) -> None:
        self._pool = pool_provider
        self._stuck_after = stuck_after
        self._interval = interval
        self._task: asyncio.Task | None = None
        self._log = structlog.get_logger("order_gauges")
        self.by_stage = Gauge("ordermesh_orders", "Orders at each stage.", ["stage"], registry=registry)
        self.not_progressing = Gauge(
            "ordermesh_orders_not_progressing",
            "Unfinished orders whose stage, flags and mode have not changed for the stuck threshold (ORDERMESH_STUCK_AFTER_SECONDS).",
            ["stage"],
            registry=registry,
        )
        for stage in Stage:
            self.by_stage.labels(stage.value).set(0)
            if stage not in (Stage.COMPLETED, Stage.CANCELLED):
                self.not_progressing.labels(stage.value).set(0)

    async def refresh(self) -> None:
        """Reads the counts once."""
        async with self._pool().acquire() as conn:
            stages = await store_ops.stage_counts(conn)
            idle = await store_ops.idle_counts(conn, self._stuck_after)
        for stage in Stage:
            self.by_stage.labels(stage.value).set(stages.get(stage.value, 0))
            if stage not in (Stage.COMPLETED, Stage.CANCELLED):
                self.not_progressing.labels(stage.value).set(idle.get(stage.value, 0))

    def start(self) -> None:
        """Refreshes in the background until stopped."""
        self._task = asyncio.create_task(self._run(), name="order-gauges")

    async def stop(self) -> None:
        """Stops refreshing."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except TRANSIENT_DB_ERRORS as error:
                self._log.warning("order gauges not refreshed", error=type(error).__name__)
            await asyncio.sleep(self._interval)
