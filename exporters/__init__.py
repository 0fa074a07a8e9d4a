"""OpenTelemetry exporters into the embedded DuckDB store, and the store itself."""

from exporters.log_exporter import DuckDBLogRecordExporter
from exporters.span_exporter import DuckDBSpanExporter
from exporters.store import TelemetryStore

__all__ = ["DuckDBLogRecordExporter", "DuckDBSpanExporter", "TelemetryStore"]
