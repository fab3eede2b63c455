"""Prometheus metrics of one service process, in a registry of its own."""

from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_Child = TypeVar("_Child")


def cached_labels(labels: Callable[..., _Child]) -> Callable[..., _Child]:
    """`metric.labels`, remembering each child: the consumer counts every message, and `labels` takes a lock and builds
    the label tuple on each call. Children are never removed from these metrics, so a remembered one stays current."""
    children: dict[tuple[Any, ...], _Child] = {}

    def child(*values: Any) -> _Child:
        try:
            return children[values]
        except KeyError:
            made = children[values] = labels(*values)
            return made

    return child


class Metrics:
    """The counters and gauges every service exposes on /metrics."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"service": service}
        self.messages = cached_labels(Counter(
            "ordermesh_messages_total",
            "Messages consumed, by topic and outcome (processed, duplicate, skipped, refused, dead_lettered).",
            ["topic", "outcome"],
            registry=self.registry,
        ).labels)
        self.retries = Counter(
            "ordermesh_transient_retries_total",
            "Retries after a transient error (database or network down).",
            registry=self.registry,
        )
        self.handler_retries = Counter(
            "ordermesh_handler_retries_total",
            "Retries after an unexpected handler error; the message is dead-lettered when they run out.",
            registry=self.registry,
        )
        self.dead_letters_sanitized = Counter(
            "ordermesh_dead_letters_sanitized_total",
            "Dead letters written in sanitized form (the original kept in dead_letter_originals).",
            registry=self.registry,
        )
        self.batches_sought_back = cached_labels(Counter(
            "ordermesh_consumer_batches_sought_back_total",
            "Batches given back to Kafka uncommitted because something escaped the consumer.",
            ["topic"],
            registry=self.registry,
        ).labels)
        self.outbox_published = Counter(
            "ordermesh_outbox_published_total", "Outbox rows published to Kafka.", registry=self.registry
        )
        self.outbox_failed = Counter(
            "ordermesh_outbox_failed_total",
            "Outbox rows Kafka will never accept, moved to outbox_failed.",
            registry=self.registry,
        )
        self.relay_restarts = Counter(
            "ordermesh_outbox_relay_restarts_total", "Times the outbox relay failed and was restarted.", registry=self.registry
        )
        self.outbox_backlog = Gauge(
            "ordermesh_outbox_backlog", "Outbox rows not yet published (checked periodically).", registry=self.registry
        )
        self.outbox_failed_pending = Gauge(
            "ordermesh_outbox_failed_pending",
            "Rows the relay moved to outbox_failed that wait for staff to re-queue or discard them (checked periodically).",
            registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "ordermesh_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row; 0 when the outbox is empty (checked periodically).",
            registry=self.registry,
        )
        self.dependency_up = cached_labels(Gauge(
            "ordermesh_dependency_up",
            "1 while a dependency (database, kafka, relay, consumers) is ready, else 0.",
            ["dependency"],
            registry=self.registry,
        ).labels)
        self.handle_seconds = cached_labels(Histogram(
            "ordermesh_handle_seconds", "Time to handle one message, commit included, by message type.", ["type"],
            registry=self.registry,
        ).labels)
        self.consumer_batches = Counter(
            "ordermesh_consumer_batches_total", "Batches this process's consumer took from Kafka.", registry=self.registry
        )
        self.offset_commits = Counter(
            "ordermesh_consumer_offset_commits_total",
            "Offset commits this process's consumer made (at most one per commit interval while busy).",
            registry=self.registry,
        )
        self.rebalances = cached_labels(Counter(
            "ordermesh_consumer_rebalances_total",
            "Partition assignments this process's consumers received (one per rebalance), by topic.",
            ["topic"],
            registry=self.registry,
        ).labels)
        self.service = labels["service"]
