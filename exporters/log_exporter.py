"""An OpenTelemetry ``LogRecordExporter`` that writes batches into the DuckDB store."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from exporters.base import StoreExporter
from exporters.records import log_table

_logger = logging.getLogger(__name__)


class DuckDBLogRecordExporter(StoreExporter, LogRecordExporter):
    """Writes each batch with one bulk insert; a record exported twice is stored once.

    Built with no arguments (the ``duckdb`` entry point), it opens the file named by ``PIPETRACE_DB``.
    """

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._shut_down:
            return LogRecordExportResult.FAILURE
        try:
            self.counters.add_exported(self.store.insert_logs(log_table(batch)), len(batch))
        except Exception:
            # The batch processor ignores our result; say what failed so it is not silent.
            _logger.exception("could not write %d log records to %s", len(batch), self.store.path)
            self.counters.add_failed(len(batch))
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS
