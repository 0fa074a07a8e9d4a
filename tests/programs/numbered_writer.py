"""A program that logs numbered records at a steady rate through the OTel SDK into the DuckDB exporter.

After each export the exporter accepted (stored or spooled), it appends the accepted numbers to the
acknowledgement file and fsyncs it; the number of the last record emitted is kept in a second file.
A test kills it with SIGKILL and reconciles what was acknowledged with what is stored.

Usage: python -m tests.programs.numbered_writer ACK_FILE EMITTED_FILE
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult

from exporters.log_exporter import DuckDBLogRecordExporter


class AcknowledgingExporter(DuckDBLogRecordExporter):
    def __init__(self, ack_path: str) -> None:
        super().__init__()
        self._ack = open(ack_path, "a")  # noqa: SIM115 - open for the life of the process

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        result = super().export(batch)
        if result is LogRecordExportResult.SUCCESS:
            self._ack.write("".join(f"{record.log_record.attributes['n']}\n" for record in batch))  # type: ignore[index]
            self._ack.flush()
            os.fsync(self._ack.fileno())
        return result


def main() -> None:
    ack_path, emitted_path = sys.argv[1], sys.argv[2]
    provider = LoggerProvider()
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            AcknowledgingExporter(ack_path), schedule_delay_millis=50, max_export_batch_size=64
        )
    )
    logger = logging.getLogger("numbered")
    logger.setLevel(logging.INFO)
    logger.addHandler(LoggingHandler(logger_provider=provider))
    print("writing", flush=True)
    with open(emitted_path, "w") as emitted:
        n = 0
        while True:
            logger.info("record %d", n, extra={"n": n})
            emitted.seek(0)
            emitted.write(f"{n}\n")
            emitted.flush()
            n += 1
            time.sleep(0.002)


if __name__ == "__main__":
    main()
