"""Calls to the outside world (gateway, warehouse, SMTP): one log line each with its result, latency and error metrics.

Adapters are wired before the service's metrics registry exists, so `OutsideCalls` keeps its metrics unregistered
until the service registers them (`ServiceDefinition.collectors`).
"""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import Counter, Histogram

from .tracing import client_span, mark_error


@dataclass
class Call:
    """One call in progress: the adapter sets its outcome (e.g. approved, refused, 2xx) and extra log fields."""

    target: str
    operation: str
    outcome: str = "ok"
    fields: dict[str, Any] = field(default_factory=dict)


class OutsideCalls:
    """Latency histogram and error counter of one service's outside calls, and their log lines."""

    def __init__(self) -> None:
        self.seconds = Histogram(
            "ordermesh_outside_call_seconds", "Time of a call to the outside world (gateway, warehouse, SMTP) by outcome.",
            ["target", "operation", "outcome"], registry=None,
        )
        self.errors = Counter(
            "ordermesh_outside_call_errors_total", "Calls to the outside world that failed (no answer, 5xx, refused connection).",
            ["target", "operation", "error"], registry=None,
        )
        self._log = structlog.get_logger("outside")

    def collectors(self) -> list[Any]:
        """The metrics to register on the service's registry."""
        return [self.seconds, self.errors]

    @asynccontextmanager
    async def observe(self, target: str, operation: str, **fields: Any) -> AsyncIterator[Call]:
        """Times the block as one call (a client span while tracing); an exception is an error (logged, counted,
        re-raised)."""
        call = Call(target, operation, fields=dict(fields))
        started = time.perf_counter()
        with client_span(target, operation) as span:
            try:
                yield call
            except Exception as error:
                call.outcome = "error"
                self.errors.labels(target, operation, type(error).__name__).inc()
                self._log.warning(
                    "outside call failed", target=target, operation=operation, error=type(error).__name__,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1), **call.fields,
                )
                raise
            finally:
                elapsed = time.perf_counter() - started
                self.seconds.labels(target, operation, call.outcome).observe(elapsed)
                span.set_attribute("ordermesh.outcome", call.outcome)
                if call.outcome.startswith("5") or call.outcome == "error":
                    mark_error(span, call.outcome)
        if call.outcome.startswith("5"):
            self.errors.labels(target, operation, call.outcome).inc()
        self._log.info(
            "outside call", target=target, operation=operation, outcome=call.outcome,
            duration_ms=round(elapsed * 1000, 1), **call.fields,
        )
