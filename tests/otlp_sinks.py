"""Receiving OTLP endpoints for tests of what Pipetrace sends on: every request body kept as it arrived.

One for OTLP/HTTP, one for OTLP/gRPC (on the official service definitions), each on a free loopback
port. Bodies are kept by signal path (``/v1/logs``, ``/v1/traces``, ``/v1/metrics``) as protobuf bytes,
so a test decodes them itself.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

# Each signal's path and its (empty: everything accepted) answer.
_ANSWERS = {
    "/v1/logs": logs_service_pb2.ExportLogsServiceResponse,
    "/v1/traces": trace_service_pb2.ExportTraceServiceResponse,
    "/v1/metrics": metrics_service_pb2.ExportMetricsServiceResponse,
}
_PATHS = {
    logs_service_pb2.ExportLogsServiceRequest: "/v1/logs",
    trace_service_pb2.ExportTraceServiceRequest: "/v1/traces",
    metrics_service_pb2.ExportMetricsServiceRequest: "/v1/metrics",
}


@dataclass
class Sink:
    """Where a sink listens (``http://127.0.0.1:<port>``) and what it received, by signal path."""

    url: str
    bodies: dict[str, list[bytes]] = field(default_factory=lambda: {path: [] for path in _ANSWERS})


@contextmanager
def http_sink() -> Iterator[Sink]:
    sink = Sink("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            sink.bodies.setdefault(self.path, []).append(body)
            answer = _ANSWERS.get(
                self.path, trace_service_pb2.ExportTraceServiceResponse
            )().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


class _Servicer(  # type: ignore[misc]
    logs_service_pb2_grpc.LogsServiceServicer,
    trace_service_pb2_grpc.TraceServiceServicer,
    metrics_service_pb2_grpc.MetricsServiceServicer,
):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def Export(self, request: Any, context: Any) -> Any:
        path = _PATHS[type(request)]
        self.sink.bodies[path].append(request.SerializeToString())
        return _ANSWERS[path]()


@contextmanager
def grpc_sink() -> Iterator[Sink]:
    sink = Sink("")
    servicer = _Servicer(sink)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(servicer, server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sink.url = f"http://127.0.0.1:{port}"
    try:
        yield sink
    finally:
        server.stop(grace=None)
