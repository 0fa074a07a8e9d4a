"""An OpenTelemetry ``SpanExporter`` that writes finished spans into the DuckDB store."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from exporters import otlp_codec
from exporters.base import StoreExporter
from exporters.otlp_spans import encode_spans
from exporters.records import span_table
from instrumentation.redaction import DEFAULT_REDACTOR


class DuckDBSpanExporter(StoreExporter[ReadableSpan], SpanExporter):
    """Writes each batch of spans with one bulk insert; a span is stored once per (trace id, span id)."""

    signal = "traces"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            return SpanExportResult.FAILURE
        if self.redacts:
            spans = [DEFAULT_REDACTOR.span(span) for span in spans]
        return SpanExportResult.SUCCESS if self.delivery.deliver(spans) else SpanExportResult.FAILURE

    def send(self, batch: Sequence[ReadableSpan]) -> bool:
        self.counters.add_exported(self.store.insert_spans(span_table(batch)), len(batch))
        return True

    def encode(self, batch: Sequence[ReadableSpan]) -> bytes:
        return encode_span_batch(batch)

    def decode(self, payload: bytes) -> Sequence[ReadableSpan]:
        return decode_span_batch(payload)


def encode_span_batch(batch: Sequence[ReadableSpan]) -> bytes:
    """A spooled batch, lossless: a received span read back is the one that was spooled."""
    return otlp_codec.to_otlp_json(encode_spans(batch))


def decode_span_batch(payload: bytes) -> Sequence[ReadableSpan]:
    request = otlp_codec.parse(payload, otlp_codec.JSON, otlp_codec.ExportTraceServiceRequest)
    decoded = otlp_codec.decode_spans(request)
    if decoded.rejected:
        raise ValueError(decoded.error)
    return list(decoded.records)
