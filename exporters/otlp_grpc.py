"""The official OTLP/gRPC span and log exporters, lossless (see :mod:`exporters.otlp_spans` and
:mod:`exporters.otlp_logs`).

A module of its own so that gRPC is imported only by a service that forwards over it.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan

from exporters.otlp_logs import encode_logs
from exporters.otlp_spans import encode_spans


class LosslessGrpcSpanExporter(OTLPSpanExporter):
    """Replaces only the encode step (``_translate_data``, the exporter's own hook for it); the channel,
    retries and status handling are the official exporter's."""

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        return encode_spans(data)


class LosslessGrpcLogExporter(OTLPLogExporter):
    """The same for logs: only the encode step is replaced."""

    def _translate_data(self, data: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
        return encode_logs(data)
