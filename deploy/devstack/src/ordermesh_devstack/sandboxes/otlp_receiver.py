"""A minimal OTLP/HTTP trace receiver for tests and evidence runs: keeps every span the services export, in memory."""

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

from ..processes import free_port

KINDS = {
    SpanProto.SPAN_KIND_CONSUMER: "consumer",
    SpanProto.SPAN_KIND_PRODUCER: "producer",
    SpanProto.SPAN_KIND_CLIENT: "client",
    SpanProto.SPAN_KIND_SERVER: "server",
}


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span: its service, ids, name, kind and attributes."""

    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    attributes: dict


class OtlpReceiver:
    """Receives `POST /v1/traces` (protobuf) on 127.0.0.1:`port` while used as a context manager; `spans` grows."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.spans.extend(decode(ExportTraceServiceRequest.FromString(body)))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args) -> None:
                pass

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The value of OTEL_EXPORTER_OTLP_ENDPOINT that points the SDK here."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "OtlpReceiver":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def decode(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """The spans of one export request."""
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                spans.append(ReceivedSpan(
                    resource.get("service.name", ""), span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(),
                    span.name, KINDS.get(span.kind, "other"),
                    {a.key: a.value.string_value or a.value.int_value for a in span.attributes},
                ))
    return spans


def span_tree(spans: list[ReceivedSpan]) -> str:
    """The spans of one trace as an indented tree (service: name [kind]), children in the order received."""
    children: dict[str, list[ReceivedSpan]] = {}
    ids = {s.span_id for s in spans}
    for span in spans:
        children.setdefault(span.parent_id if span.parent_id in ids else "", []).append(span)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for span in children.get(parent, []):
            lines.append(f"{'  ' * depth}{span.service}: {span.name} [{span.kind}]")
            walk(span.span_id, depth + 1)

    walk("", 0)
    return "\n".join(lines)
