"""Exporter throughput, side by side on the same batches (not a test: numbers, not assertions).

Measures, in one run on one machine:
  * sdk_emit: std logging -> OTel LoggingHandler -> BatchLogRecordProcessor -> an exporter that does
    nothing. This is the SDK's own per-record cost, the in-process limit.
  * sdk_emit + duckdb: the same path with our DuckDB exporter at the end; the difference is what the
    exporter adds per record.
  * duckdb export: our exporter's export() alone on pre-built batches of 512 records.
  * row-by-row: an exporter that writes the same rows with executemany, one row per statement.

Run:  .venv/bin/python -m bench.exporter_throughput [--records 50000] [--row-by-row-records 2000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from exporters.log_exporter import DuckDBLogRecordExporter
from exporters.records import log_table
from exporters.store import TelemetryStore
from service.settings import Settings

BATCH = 512
RESULTS = Path(__file__).parent / "results" / "exporter_throughput.json"


class NullExporter(LogRecordExporter):
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class CollectingExporter(NullExporter):
    def __init__(self) -> None:
        self.records: list[ReadableLogRecord] = []

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.records.extend(batch)
        return LogRecordExportResult.SUCCESS


class RowByRowExporter(NullExporter):
    """The baseline the seed's codebase used: one INSERT per record."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store
        self._ids = itertools.count()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        table = log_table(batch)
        names = table.column_names
        times = {"timestamp", "observed_timestamp"}
        for name in times:
            table = table.set_column(names.index(name), name, table.column(name).cast("int64"))
        rows = [(next(self._ids), *(r[n] for n in names)) for r in table.to_pylist()]
        placeholders = ", ".join("make_timestamp_ns(?)" if n in times else "?" for n in names)
        cur = self.store.cursor()
        cur.executemany(f"INSERT INTO logs (id, {', '.join(names)}) VALUES (?, {placeholders})", rows)
        return LogRecordExportResult.SUCCESS


def emit_through_sdk(exporter: LogRecordExporter, count: int, batch: int = BATCH) -> float:
    """Seconds to log ``count`` lines through the OTel logging bridge and flush them to ``exporter``."""
    resource = Resource.create({"service.name": "bench"})
    provider = LoggerProvider(resource=resource)
    # A queue as large as the run, so the comparison measures work, not dropped records.
    provider.add_log_record_processor(
        BatchLogRecordProcessor(exporter, max_queue_size=count + 1, max_export_batch_size=batch)
    )
    logger = logging.getLogger(f"bench.{type(exporter).__name__}.{id(exporter)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    started = time.perf_counter()
    for i in range(count):
        logger.info(
            "Extracted %d rows from resource %s",
            i,
            "orders",
            extra={
                "pipeline.id": f"pipe-{i % 20}",
                "pipeline.run_id": f"run-{i % 200}",
                "pipeline.stage": "extract",
            },
        )
    provider.force_flush()
    elapsed = time.perf_counter() - started
    logger.removeHandler(handler)
    provider.shutdown()
    return elapsed


def make_batches(count: int, size: int = BATCH) -> list[list[ReadableLogRecord]]:
    collector = CollectingExporter()
    emit_through_sdk(collector, count)
    records = collector.records
    return [records[i : i + size] for i in range(0, len(records), size)]


def time_export(
    make_exporter: Callable[[], LogRecordExporter], batches: list[list[ReadableLogRecord]]
) -> float:
    exporter = make_exporter()
    started = time.perf_counter()
    for batch in batches:
        exporter.export(batch)
    return time.perf_counter() - started


def time_conversion(batches: list[list[ReadableLogRecord]]) -> float:
    """The exporter's Python part alone (records to Arrow), which holds the GIL."""
    started = time.perf_counter()
    for batch in batches:
        log_table(batch)
    return time.perf_counter() - started


def best_of(runs: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--row-by-row-records", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3, help="repeat each measurement; the best run counts")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=Settings().log_batch_size,
        help="export batch size of the measured service path (default: the service's own setting)",
    )
    args = parser.parse_args()

    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        db_counter = iter(range(10_000))

        def fresh_store() -> TelemetryStore:
            return TelemetryStore(Path(tmp) / f"bench-{next(db_counter)}.duckdb")

        batches = make_batches(n, args.batch_size)
        small = make_batches(args.row_by_row_records)

        batch = args.batch_size
        sdk_null = best_of(args.runs, lambda: emit_through_sdk(NullExporter(), n, batch))
        sdk_duckdb = best_of(
            args.runs, lambda: emit_through_sdk(DuckDBLogRecordExporter(store=fresh_store()), n, batch)
        )
        sdk_duckdb_default = best_of(
            args.runs, lambda: emit_through_sdk(DuckDBLogRecordExporter(store=fresh_store()), n, BATCH)
        )
        conversion = best_of(args.runs, lambda: time_conversion(batches))
        duckdb_export = best_of(
            args.runs, lambda: time_export(lambda: DuckDBLogRecordExporter(store=fresh_store()), batches)
        )
        # Row by row once: it is slow enough that one run is stable.
        row_by_row = time_export(lambda: RowByRowExporter(fresh_store()), small)

    per = {
        "sdk_emit_us_per_record": sdk_null / n * 1e6,
        "sdk_emit_with_duckdb_us_per_record": sdk_duckdb / n * 1e6,
        "sdk_emit_with_duckdb_sdk_default_batch_us_per_record": sdk_duckdb_default / n * 1e6,
        "duckdb_export_us_per_record": duckdb_export / n * 1e6,
        "conversion_us_per_record": conversion / n * 1e6,
        "row_by_row_us_per_record": row_by_row / args.row_by_row_records * 1e6,
    }
    result: dict[str, Any] = {
        "command": "python -m bench.exporter_throughput "
        f"--records {n} --row-by-row-records {args.row_by_row_records} --runs {args.runs} "
        f"--batch-size {args.batch_size}",
        "batch_size": args.batch_size,
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "records": n,
        "records_per_second": {
            "sdk_emit_null_exporter": n / sdk_null,
            "sdk_emit_duckdb_exporter": n / sdk_duckdb,
            "sdk_emit_duckdb_exporter_sdk_default_batch": n / sdk_duckdb_default,
            "duckdb_exporter_export": n / duckdb_export,
            "row_by_row_executemany": args.row_by_row_records / row_by_row,
        },
        "us_per_record": per,
        "ratios": {
            "duckdb_export_vs_row_by_row": per["row_by_row_us_per_record"]
            / per["duckdb_export_us_per_record"],
            "exporter_added_to_sdk_emit_percent": 100
            * per["duckdb_export_us_per_record"]
            / per["sdk_emit_us_per_record"],
            "gil_held_conversion_vs_sdk_emit_percent": 100
            * per["conversion_us_per_record"]
            / per["sdk_emit_us_per_record"],
            "end_to_end_overhead_percent": 100 * (sdk_duckdb - sdk_null) / sdk_null,
            "end_to_end_overhead_percent_sdk_default_batch": 100 * (sdk_duckdb_default - sdk_null) / sdk_null,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    rate = result["records_per_second"]
    print(f"{'path':48} {'records/s':>12} {'us/record':>10}")
    for label, key, us in (
        ("SDK emit, null exporter", "sdk_emit_null_exporter", per["sdk_emit_us_per_record"]),
        (
            f"SDK emit, DuckDB exporter, batch {batch}",
            "sdk_emit_duckdb_exporter",
            per["sdk_emit_with_duckdb_us_per_record"],
        ),
        (
            f"SDK emit, DuckDB exporter, batch {BATCH}",
            "sdk_emit_duckdb_exporter_sdk_default_batch",
            per["sdk_emit_with_duckdb_sdk_default_batch_us_per_record"],
        ),
        (
            f"DuckDB exporter export() alone, batch {batch}",
            "duckdb_exporter_export",
            per["duckdb_export_us_per_record"],
        ),
        ("row-by-row executemany exporter", "row_by_row_executemany", per["row_by_row_us_per_record"]),
        ("  of the DuckDB exporter: records to Arrow (GIL)", "", per["conversion_us_per_record"]),
    ):
        print(f"{label:48} {rate[key] if key else 1e6 / us:>12,.0f} {us:>10.2f}")
    ratios = result["ratios"]
    print(f"\nDuckDB exporter vs row-by-row: {ratios['duckdb_export_vs_row_by_row']:.0f}x faster")
    print(
        "DuckDB export cost as a share of the SDK's emit cost: "
        f"{ratios['exporter_added_to_sdk_emit_percent']:.1f}%"
    )
    print(
        "GIL-held part of the exporter as a share of the SDK's emit cost: "
        f"{ratios['gil_held_conversion_vs_sdk_emit_percent']:.1f}%"
    )
    print(f"End-to-end over the null exporter, batch {batch}: {ratios['end_to_end_overhead_percent']:+.1f}%")
    print(
        f"End-to-end over the null exporter, batch {BATCH}: "
        f"{ratios['end_to_end_overhead_percent_sdk_default_batch']:+.1f}%"
    )
    print(
        f"\nwritten to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}"
    )


if __name__ == "__main__":
    main()
