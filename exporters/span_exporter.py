"""An OpenTelemetry ``SpanExporter`` that writes finished spans into the DuckDB store."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from exporters.base import StoreExporter
from exporters.records import span_table

_logger = logging.getLogger(__name__)


class DuckDBSpanExporter(StoreExporter, SpanExporter):
    """Writes each batch of spans with one bulk insert; a span is stored once per (trace id, span id)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            return SpanExportResult.FAILURE
        try:
            self.counters.add_exported(self.store.insert_spans(span_table(spans)), len(spans))
        except Exception:
            _logger.exception("could not write %d spans to %s", len(spans), self.store.path)
            self.counters.add_failed(len(spans))
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
