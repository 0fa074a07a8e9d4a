"""A program that logs numbered records at a steady rate through the OTel SDK's batch processor, at
its defaults, into the ``duckdb`` exporter, then shuts the SDK down as any program does at exit.

Usage: python -m tests.programs.steady_writer RECORDS_PER_SECOND SECONDS

Each record carries its number as the attribute ``n``; the program prints the last number emitted and
then, after the shutdown, the exporter's counters as JSON.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from exporters.log_exporter import DuckDBLogRecordExporter


def main() -> None:
    rate, seconds = float(sys.argv[1]), float(sys.argv[2])
    exporter = DuckDBLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))  # the SDK's defaults
    logger = logging.getLogger("steady")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=provider))
    print("writing", flush=True)
    total = int(rate * seconds)
    started = time.monotonic()
    for n in range(total):
        logger.info("record %d", n, extra={"n": n})
        delay = started + (n + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(f"emitted {total}", flush=True)
    provider.shutdown()
    print(orjson.dumps(exporter.status()).decode(), flush=True)


if __name__ == "__main__":
    main()
