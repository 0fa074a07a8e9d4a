"""The official OpenTelemetry Python SDK through its OTLP exporters, one transport per parameter.

The Python SDK ships no OTLP/HTTP JSON exporter (opentelemetry-python implements ``http/protobuf`` and
``grpc`` only), so JSON is covered by the JS SDK and opentelemetry-proto's examples. gRPC goes through
a capturing gRPC proxy that records each Export call's message bytes the same way.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tests.conformance.capture import CapturingGrpcProxy, CapturingProxy
from tests.conformance.expect import assert_same, decode, expected_log, expected_span, log_records, spans
from tests.conftest import LiveServer

# Transport name (as OTEL_EXPORTER_OTLP_PROTOCOL spells it) -> exporters sending to the proxies.
Exporters = Callable[[CapturingProxy, CapturingGrpcProxy], tuple[LogRecordExporter, SpanExporter]]
TRANSPORTS: dict[str, Exporters] = {
    "http/protobuf": lambda http, _: (
        OTLPLogExporter(endpoint=f"{http.url}/v1/logs"),
        OTLPSpanExporter(endpoint=f"{http.url}/v1/traces"),
    ),
    "http/protobuf+gzip": lambda http, _: (
        OTLPLogExporter(endpoint=f"{http.url}/v1/logs", compression=Compression.Gzip),
        OTLPSpanExporter(endpoint=f"{http.url}/v1/traces", compression=Compression.Gzip),
    ),
    "grpc": lambda _, rpc: (
        GrpcLogExporter(endpoint=rpc.target, insecure=True),
        GrpcSpanExporter(endpoint=rpc.target, insecure=True),
    ),
    "grpc+gzip": lambda _, rpc: (
        GrpcLogExporter(endpoint=rpc.target, insecure=True, compression=grpc.Compression.Gzip),
        GrpcSpanExporter(endpoint=rpc.target, insecure=True, compression=grpc.Compression.Gzip),
    ),
}
NOW = 1_796_000_000_123_456_789  # nanoseconds matter: the Python SDK keeps them
PARENT_SPAN = 0x00F067AA0BA902B7

RESOURCE = Resource(
    {
        "service.name": "conformance-python",
        "host.name": "conformance",
        "host.count": 2,
        "host.load": 0.75,
        "tags": ("a", "b"),
    },
    schema_url="https://opentelemetry.io/schemas/1.26.0",
)


def _values() -> dict[str, Any]:
    return {
        "a.string": "naïve text, 'quoted'",
        "an.int": -(2**63),
        "a.double": 2.0,  # the Python SDK keeps it a double
        "a.nan": math.nan,
        "an.inf": -math.inf,
        "a.bool": False,
        "some.bytes": b"\x00\xffbin",
        "an.array": ("x", "y"),
        "a.map": {"zeta": 1, "alpha": ["nested", 2.5, True]},
    }


def _emit_logs(provider: LoggerProvider, trace_id: int, pipeline_id: str) -> None:
    logger = provider.get_logger(
        "conformance.python", "2.0.0", schema_url="https://opentelemetry.io/schemas/1.25.0",
        attributes={"scope.kind": "test", "scope.level": 3},
    )  # fmt: skip
    parent = trace.set_span_in_context(
        NonRecordingSpan(SpanContext(trace_id, PARENT_SPAN, False, TraceFlags(TraceFlags.SAMPLED)))
    )
    bodies: dict[str, Any] = {
        "body.string": "a plain line",
        "body.int": 7,
        "body.double": 0.1,
        "body.bool": True,
        "body.bytes": b"\x01\x02",
        "body.array": [1, "two", 3.0, None],
        "body.map": {"nested": {"deeper": [{"k": "v"}]}, "n": -1},
        "body.none": None,
    }
    for number, (event_name, body) in enumerate(bodies.items()):
        logger.emit(
            timestamp=NOW + number, observed_timestamp=NOW + 1000 + number, context=parent,
            severity_number=SeverityNumber(number * 3 + 1), severity_text=f"sev-{number}", body=body,
            attributes={**_values(), "record.number": number}, event_name=event_name,
        )  # fmt: skip
    logger.emit(body="observed only", context=parent, severity_number=SeverityNumber.WARN)
    # Outside any trace: read back through /api/logs?pipeline_id=.
    # A promoted attribute (stored in its column) comes back in its place, not last.
    logger.emit(timestamp=NOW, body="no trace", attributes={"pipeline.id": pipeline_id, "after": 1})


def _emit_spans(provider: TracerProvider, trace_id: int) -> None:
    tracer = provider.get_tracer("conformance.python", "2.0.0")
    remote = trace.set_span_in_context(
        NonRecordingSpan(SpanContext(trace_id, PARENT_SPAN, True, TraceFlags(TraceFlags.SAMPLED)))
    )
    parent = tracer.start_span("py parent", remote, SpanKind.SERVER, {"an.int": 5, "a.string": "s"},
                               start_time=NOW)  # fmt: skip
    child = tracer.start_span(
        "py child", trace.set_span_in_context(parent), SpanKind.CLIENT,
        {"a.double": 1.5, "a.bool": True, "an.array": ("a", "b")}, start_time=NOW + 1,
    )  # fmt: skip
    child.set_status(Status(StatusCode.ERROR, "it failed"))
    child.end(end_time=NOW + 2_000_001)
    parent.set_status(Status(StatusCode.OK))
    parent.end(end_time=NOW + 3_000_002)


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_logs_and_spans_come_back_as_sent(
    proxy: CapturingProxy, grpc_proxy: CapturingGrpcProxy, server: LiveServer, transport: str
) -> None:
    trace_id = int(secrets.token_hex(16), 16)
    pipeline_id = f"conformance-{secrets.token_hex(4)}"
    log_exporter, span_exporter = TRANSPORTS[transport](proxy, grpc_proxy)
    loggers = LoggerProvider(resource=RESOURCE)
    loggers.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    tracers = TracerProvider(resource=RESOURCE)
    tracers.add_span_processor(BatchSpanProcessor(span_exporter))
    try:
        _emit_logs(loggers, trace_id, pipeline_id)
        _emit_spans(tracers, trace_id)
        assert loggers.force_flush() and tracers.force_flush()
    finally:
        loggers.shutdown()
        tracers.shutdown()

    captured = proxy.take("/v1/logs")
    assert captured and all(c.status == 200 for c in captured), [c.status for c in captured]
    if transport.startswith("http"):  # grpcio inflates gRPC messages before the proxy sees them
        gzipped = {c.headers.get("content-encoding") == "gzip" for c in captured}
        assert gzipped == {transport.endswith("+gzip")}
    sent = [expected_log(r) for r in log_records([decode(c, ExportLogsServiceRequest) for c in captured])]
    assert len(sent) == 10
    in_trace = [r for r in sent if r["trace_id"] is not None]
    correlated = server.get(f"/api/logs/correlation/{trace_id:032x}")
    assert correlated.status_code == 200, correlated.text
    assert_same(in_trace, correlated.json()["logs"], "log")
    outside = [r for r in sent if r["trace_id"] is None]
    listed = server.get("/api/logs", params={"pipeline_id": pipeline_id})
    assert listed.status_code == 200, listed.text
    assert_same(outside, listed.json()["logs"], "log")

    captured = proxy.take("/v1/traces")
    assert captured and all(c.status == 200 for c in captured), [c.status for c in captured]
    sent = [expected_span(s) for s in spans([decode(c, ExportTraceServiceRequest) for c in captured])]
    assert len(sent) == 2
    assert_same(sent, correlated.json()["spans"], "span")
