"""Prometheus metrics of one service process, in a registry of its own."""

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    """The counters every service exposes on /metrics."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"service": service}
        self.messages = Counter(
            "ordermesh_messages_total",
            "Messages consumed, by topic and outcome (processed, duplicate, skipped, dead_lettered).",
            ["topic", "outcome"],
            registry=self.registry,
        ).labels
        self.retries = Counter(
            "ordermesh_transient_retries_total",
            "Retries after a transient error (database or network down).",
            registry=self.registry,
        )
        self.outbox_published = Counter(
            "ordermesh_outbox_published_total", "Outbox rows published to Kafka.", registry=self.registry
        )
        self.handle_seconds = Histogram(
            "ordermesh_handle_seconds", "Time to handle one message, commit included.", registry=self.registry
        )
        self.service = labels["service"]
