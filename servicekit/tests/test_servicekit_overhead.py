"""The consumer's per-batch and per-message framework work: what it skips must not change what it does."""

import asyncio
import json

import pytest
import structlog
from opentelemetry import trace

from ordermesh_servicekit.logging import bound, configure_logging
from ordermesh_servicekit.metrics import Metrics, cached_labels
from ordermesh_servicekit.subscribing import _process_all, the_message_itself
from ordermesh_servicekit.tracing import consumer_span
from doubles import FakeRecord


def test_a_cached_child_is_the_metrics_own_and_counts_in_its_registry() -> None:
    metrics = Metrics("test")
    metrics.messages("t", "processed").inc()
    metrics.messages("t", "processed").inc()
    metrics.messages("t", "skipped").inc()
    assert metrics.messages("t", "processed") is metrics.messages("t", "processed")
    sample = metrics.registry.get_sample_value
    assert sample("ordermesh_messages_total", {"topic": "t", "outcome": "processed"}) == 2
    assert sample("ordermesh_messages_total", {"topic": "t", "outcome": "skipped"}) == 1
    metrics.handle_seconds("PaymentAuthorized").observe(0.5)
    assert sample("ordermesh_handle_seconds_count", {"type": "PaymentAuthorized"}) == 1


def test_cached_labels_asks_the_metric_once_per_label_values() -> None:
    asked: list[tuple] = []

    def labels(*values):
        asked.append(values)
        return object()

    child = cached_labels(labels)
    assert child("a", "b") is child("a", "b")
    assert child("a", "c") is not child("a", "b")
    assert asked == [("a", "b"), ("a", "c")]


def test_bound_keys_reach_the_log_line_and_the_earlier_values_come_back(capsys, restore_logging) -> None:
    log = configure_logging("orders", level="WARNING")
    with bound(topic="orders.events.v1", offset=4):
        with bound(offset=5, order_id="o-1"):
            log.warning("inner")
        log.warning("outer")
    log.warning("after")
    inner, outer, after = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines())
    assert (inner["topic"], inner["offset"], inner["order_id"]) == ("orders.events.v1", 5, "o-1")
    assert (outer["topic"], outer["offset"]) == ("orders.events.v1", 4) and "order_id" not in outer
    assert "topic" not in after and "offset" not in after
    assert structlog.contextvars.get_contextvars() == {"service": "orders"}


def test_a_handled_messages_fields_are_written_only_with_a_line_and_a_key_of_the_call_wins(capsys, restore_logging) -> None:
    from uuid import uuid4

    from ordermesh_contracts import OrderCompleted
    from ordermesh_servicekit.consuming import HandledFields

    class Counted(HandledFields):
        __slots__ = ("worked_out",)

        def fields(self):
            self.worked_out += 1
            return super().fields()

    message = OrderCompleted(
        order_id=uuid4(), shop_id="shop-1", external_order_no="A-1", event_id=uuid4(), correlation_id=uuid4(),
        causation_id=None, occurred_at="2026-12-03T10:00:00+09:00",
    )
    fields = Counted(message, FakeRecord("orders.events.v1", 2, 41, b"k", b"{}", []))
    fields.worked_out = 0
    log = configure_logging("notify", level="WARNING")
    with bound(handled=fields):
        log.info("below the level")
        assert fields.worked_out == 0
        log.warning("written", type="overridden")
    line = json.loads(capsys.readouterr().out.strip())
    assert fields.worked_out == 1 and "handled" not in line
    assert (line["event_id"], line["correlation_id"], line["order_id"]) == (
        str(message.event_id), str(message.correlation_id), str(message.order_id)
    )
    assert (line["shop_order_no"], line["topic"], line["partition"], line["offset"], line["type"]) == (
        "A-1", "orders.events.v1", 2, 41, "overridden"
    )


def test_bound_restores_a_key_bound_outside_it(restore_logging) -> None:
    structlog.contextvars.bind_contextvars(topic="before")
    with bound(topic="during"):
        assert structlog.contextvars.get_contextvars()["topic"] == "during"
    assert structlog.contextvars.get_contextvars()["topic"] == "before"


def test_without_tracing_a_consumer_span_records_nothing_and_leaves_the_current_span_alone() -> None:
    record = FakeRecord("orders.events.v1", 0, 7, b"k", b"{}", [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")])
    before = trace.get_current_span()
    asked: list[str] = []
    with consumer_span(record, "OrderAccepted", lambda: asked.append("attributes") or {"ordermesh.order_id": "o-1"}) as span:
        assert not span.is_recording()
        assert asked == []  # nothing works out attributes no span keeps
        span.set_attribute("ordermesh.outcome", "processed")
        assert trace.get_current_span() is before


class _Message:
    raw_message = ("record",)


async def test_the_handler_gets_the_batch_message_itself_as_its_body() -> None:
    message = _Message()
    assert await the_message_itself(message) is message


class _Consumer:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.batches: list[list] = []

    async def process(self, batch: list) -> None:
        self.batches.append(batch)
        await asyncio.sleep(0)
        if self.error:
            raise self.error


async def test_each_topic_gets_its_records_and_an_error_is_returned_as_gather_would() -> None:
    broken = RuntimeError("no outcome")
    fine, failing = _Consumer(), _Consumer(broken)
    assert await _process_all({"a": fine}, {"a": [1, 2]}) == [None]
    assert await _process_all({"b": failing}, {"b": [3]}) == [broken]
    assert await _process_all({"a": fine, "b": failing}, {"a": [4], "b": [5]}) == [None, broken]
    assert fine.batches == [[1, 2], [4]] and failing.batches == [[3], [5]]


def test_the_startup_heap_is_frozen_out_of_the_collectors_sight_and_later_garbage_is_still_collected() -> None:
    import gc
    import weakref

    from ordermesh_servicekit.service import _freeze_startup_heap

    class Node:
        pass

    try:
        _freeze_startup_heap()
        assert gc.get_freeze_count() > 1000  # the imported modules, validators and wiring
        later = Node()
        later.cycle = later
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
