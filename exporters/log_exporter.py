"""An OpenTelemetry ``LogRecordExporter`` that writes batches into the DuckDB store."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from exporters import otlp_codec
from exporters.base import StoreExporter
from exporters.otlp_logs import encode_logs
from exporters.records import log_table
from instrumentation.redaction import DEFAULT_REDACTOR


class DuckDBLogRecordExporter(StoreExporter[ReadableLogRecord], LogRecordExporter):
    """Writes each batch with one bulk insert; a record exported twice is stored once.

    Built with no arguments (the ``duckdb`` entry point), it opens the file named by ``PIPETRACE_DB``.
    A batch the store cannot take is retried, then spooled and replayed (see ``exporters.resilience``).
    """

    signal = "logs"

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._shut_down:
            return LogRecordExportResult.FAILURE
        if self.redacts:
            batch = [DEFAULT_REDACTOR.readable_log(record) for record in batch]
        delivered = self.delivery.deliver(batch)
        return LogRecordExportResult.SUCCESS if delivered else LogRecordExportResult.FAILURE

    def send(self, batch: Sequence[ReadableLogRecord]) -> bool:
        self.counters.add_exported(self.store.insert_logs(log_table(batch)), len(batch))
        return True

    def encode(self, batch: Sequence[ReadableLogRecord]) -> bytes:
        return encode_log_batch(batch)

    def decode(self, payload: bytes) -> Sequence[ReadableLogRecord]:
        return decode_log_batch(payload)


def encode_log_batch(batch: Sequence[ReadableLogRecord]) -> bytes:
    return otlp_codec.to_otlp_json(encode_logs(batch))  # lossless: received dropped counts kept


def decode_log_batch(payload: bytes) -> Sequence[ReadableLogRecord]:
    request = otlp_codec.parse(payload, otlp_codec.JSON, otlp_codec.ExportLogsServiceRequest)
    decoded = otlp_codec.decode_logs(request)
    if decoded.rejected:
        raise ValueError(decoded.error)
    return [otlp_codec.readable(record) for record in decoded.records]
