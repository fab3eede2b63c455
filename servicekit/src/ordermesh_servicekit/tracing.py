"""OpenTelemetry tracing: one order is one trace across the five services.

Off by default. On when the standard variables ask for it: `OTEL_TRACES_EXPORTER=otlp`, or an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true` wins. Spans go over
OTLP/HTTP (protobuf); the SDK reads the rest (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`,
headers, timeouts) itself.

The chain: a consumer span per handled message, child of the span named by the record's `traceparent`; what the
handler publishes is written to the outbox with the consumer span's `traceparent`; the relay publishes each row in a
producer span, child of that, and sends the producer span's `traceparent` on; outside calls are client spans.
An outside call answered later by an HTTP callback (a warehouse shipment, a prepaid payment) keeps the current
`traceparent` and the order's correlation id with its row; the callback's ingress span continues that trace, so the
events it causes stay in the order's trace. Periodic jobs (credit checks polled, authorizations renewed, overdue
payments) continue it the same way from the payment's row.
Without tracing, `traceparent` stays the synthetic one of `outbox.traceparent_for`.
"""

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

_PROPAGATOR = TraceContextTextMapPropagator()


def tracing_requested(env: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables turn tracing on (it is off by default)."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip()
    if exporters:
        return "otlp" in {e.strip() for e in exporters.split(",")}
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(service: str) -> "TracerProvider | None":
    """Installs the SDK with an OTLP/HTTP exporter when tracing is requested; returns the provider (to shut down).

    The SDK is imported only then: it costs a service's start-up a noticeable share of its imports.
    """
    if not tracing_requested():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"ordermesh-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def tracing_active() -> bool:
    """Whether spans are recorded in this process."""
    sdk = sys.modules.get("opentelemetry.sdk.trace")
    return sdk is not None and isinstance(trace.get_tracer_provider(), sdk.TracerProvider)


def _tracer() -> trace.Tracer:
    return trace.get_tracer("ordermesh")


def _carrier(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {
        key: value.decode("latin-1")
        for key, value in (headers or ())
        if key in ("traceparent", "tracestate") and isinstance(value, (bytes, bytearray))
    }


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span while tracing is active, else None."""
    if not tracing_active():
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def consumer_span(record: Any, message_type: str, attributes: Callable[[], Mapping[str, Any]]) -> Iterator[Span]:
    """The span of one handled record, child of the span its `traceparent` header names (current while it runs), with
    the `attributes` the callable gives. Without tracing, a span that records nothing and is not made current (the no-op
    tracer's span costs a context switch and an attribute dict per message, and nothing reads it)."""
    if not tracing_active():
        yield trace.INVALID_SPAN
        return
    parent = _PROPAGATOR.extract(_carrier(record.headers))
    with _tracer().start_as_current_span(
        f"{record.topic} process {message_type}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "messaging.message.type": message_type,
            **{k: v for k, v in attributes().items() if v is not None},
        },
    ) as span:
        yield span


@contextmanager
def producer_span(topic: str, headers: list[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    """A span publishing one outbox row, child of the row's `traceparent`; yields the headers to send, whose
    `traceparent` names this span. Without tracing, the headers as they are."""
    if not tracing_active():
        yield headers
        return
    parent = _PROPAGATOR.extract(_carrier(headers))
    token = otel_context.attach(parent)
    try:
        with _tracer().start_as_current_span(
            f"{topic} publish", kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.operation.type": "publish", "messaging.destination.name": topic},
        ):
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier)
            sent = [(k, v) for k, v in headers if k not in ("traceparent", "tracestate")]
            yield [*sent, *[(k, v.encode("latin-1")) for k, v in carrier.items()]]
    finally:
        otel_context.detach(token)


@contextmanager
def client_span(target: str, operation: str) -> Iterator[Span]:
    """A span of one outside call, child of the current span."""
    with _tracer().start_as_current_span(
        f"{target} {operation}", kind=SpanKind.CLIENT, attributes={"peer.service": target, "ordermesh.operation": operation},
    ) as span:
        yield span


@contextmanager
def ingress_span(name: str, traceparent: str | None, attributes: Mapping[str, Any]) -> Iterator[Span]:
    """The server span of one HTTP request entering the suite (a callback, a webhook), current while it runs: child of
    `traceparent` (the span that made the request the callback answers, kept with its row), or a new trace's root."""
    with _continued(name, traceparent, attributes, SpanKind.SERVER) as span:
        yield span


@contextmanager
def job_span(name: str, traceparent: str | None, attributes: Mapping[str, Any]) -> Iterator[Span]:
    """The span of a periodic job's work on one order (a credit check polled, an authorization renewed), current while
    it runs: child of the order's `traceparent` kept with its row, so what the job publishes stays in the order's trace."""
    with _continued(name, traceparent, attributes, SpanKind.INTERNAL) as span:
        yield span


@contextmanager
def _continued(name: str, traceparent: str | None, attributes: Mapping[str, Any], kind: SpanKind) -> Iterator[Span]:
    parent = _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent and tracing_active() else None
    with _tracer().start_as_current_span(
        name, context=parent, kind=kind, attributes={k: v for k, v in attributes.items() if v is not None},
    ) as span:
        yield span


def mark_error(span: Span, description: str) -> None:
    """Sets the span's status to error."""
    span.set_status(Status(StatusCode.ERROR, description))
