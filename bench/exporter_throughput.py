"""Exporter throughput, side by side on the same batches (not a test: numbers, not assertions).

Measures, in one run on one machine:
  * sdk_emit: std logging -> OTel LoggingHandler -> BatchLogRecordProcessor -> an exporter that does
    nothing. This is the SDK's own per-record cost, the in-process limit.
  * sdk_emit + duckdb: the same path with our DuckDB exporter at the end; the difference is what the
    exporter adds per record.
  * duckdb export: our exporter's export() alone on pre-built batches, of the service's size and of
    the SDK's 512.
  * row-by-row: an exporter that writes the same rows with executemany, one row per statement.
  * control: an exporter that spends the DuckDB exporter's own DuckDB CPU without touching a record,
    which shows what off-GIL work of that size costs the emitting thread on this machine.

Run:  .venv/bin/python -m bench.exporter_throughput --records 200000 --row-by-row-records 2000 --runs 15
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from exporters.log_exporter import DuckDBLogRecordExporter
from exporters.records import LOG_ROW_SCHEMA, log_table
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
        rows = log_table(batch)
        # The columns it wrote before the exporter promoted pipeline context itself: the same work.
        table = (
            rows.columns.select(LOG_ROW_SCHEMA.names)
            .drop_columns(["row"])
            .append_column("attributes", pa.array([json.dumps(a) for a in json.loads(rows.attributes)]))
        )
        names = table.column_names
        times = {"timestamp", "observed_timestamp"}
        for name in times:
            table = table.set_column(names.index(name), name, table.column(name).cast("int64"))
        rows = [(next(self._ids), *(r[n] for n in names)) for r in table.to_pylist()]
        placeholders = ", ".join("make_timestamp_ns(?)" if n in times else "?" for n in names)
        cur = self.store.cursor()
        cur.executemany(f"INSERT INTO logs (id, {', '.join(names)}) VALUES (?, {placeholders})", rows)
        return LogRecordExportResult.SUCCESS


class BurnExporter(NullExporter):
    """A control: per batch, as much CPU inside DuckDB (off the GIL) as our exporter's export() takes,
    touching no record. What it adds to the emitting thread is what any off-GIL work of that size adds
    on this machine, Python aside."""

    def __init__(self, rows_per_record: int) -> None:
        self.rows_per_record = rows_per_record
        self.connection = duckdb.connect()
        self.connection.execute("SET threads = 1")

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        rows = self.rows_per_record * len(batch)
        self.connection.execute(f"SELECT sum(hash(i)) FROM range({rows}) AS t(i)").fetchall()
        return LogRecordExportResult.SUCCESS


def burn_rows_per_record(us_per_record: float) -> int:
    """How many rows of the control's query cost ``us_per_record`` of CPU."""
    connection = duckdb.connect()
    connection.execute("SET threads = 1")
    rows = 5_000_000
    started = time.process_time()
    connection.execute(f"SELECT sum(hash(i)) FROM range({rows}) AS t(i)").fetchall()
    us_per_row = (time.process_time() - started) * 1e6 / rows
    return max(1, round(us_per_record / us_per_row))


def emit_through_sdk(exporter: LogRecordExporter, count: int, batch: int = BATCH) -> tuple[float, float]:
    """Log ``count`` lines through the OTel logging bridge to ``exporter``.

    Returns the seconds the emitting loop took (the per-record cost a program pays while the batch
    processor exports beside it) and the seconds until the final flush had stored everything.
    """
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
    loop = time.perf_counter() - started
    provider.force_flush()
    total = time.perf_counter() - started
    logger.removeHandler(handler)
    provider.shutdown()
    return loop, total


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
    elapsed = time.perf_counter() - started
    exporter.shutdown()
    return elapsed


def time_conversion(batches: list[list[ReadableLogRecord]]) -> float:
    """The exporter's Python part alone (records to Arrow), which holds the GIL."""
    started = time.perf_counter()
    for batch in batches:
        log_table(batch)
    return time.perf_counter() - started


def best_of(runs: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(runs))


def interleaved_bests(runs: int, measures: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Each measure's best of ``runs`` rounds, every measure taken once a round."""
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(runs):
        for name, measure in measures.items():
            samples[name].append(measure())
    return {name: min(values) for name, values in samples.items()}


def interleaved_emits(
    runs: int, variants: dict[str, tuple[Callable[[], LogRecordExporter], int]], count: int
) -> dict[str, tuple[float, float]]:
    """Run every variant once per round, ``runs`` rounds, and keep each one's median (loop, total).

    Interleaving spreads the drift of a shared machine over all variants alike, so their ratio holds.
    """
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, (make_exporter, batch) in variants.items():
            samples[name].append(emit_through_sdk(make_exporter(), count, batch))
    return {
        name: (statistics.median(s[0] for s in runs_), statistics.median(s[1] for s in runs_))
        for name, runs_ in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--row-by-row-records", type=int, default=2_000)
    parser.add_argument(
        "--runs",
        type=int,
        default=15,
        help="rounds; emit paths report medians, export-only paths (row-by-row included) the best run",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=Settings().log_batch_size,
        help="export batch size of the measured service path (default: the service's own setting)",
    )
    args = parser.parse_args()
    n, batch, runs = args.records, args.batch_size, args.runs

    with tempfile.TemporaryDirectory() as tmp:
        numbers = itertools.count()

        def duckdb_exporter() -> LogRecordExporter:
            # No retries or spooling can be involved: every write here succeeds.
            store = TelemetryStore(Path(tmp) / f"bench-{next(numbers)}.duckdb")
            return DuckDBLogRecordExporter(store=store, fallback_directory=Path(tmp) / "spool")

        batches = make_batches(n, batch)
        sdk_batches = make_batches(n, BATCH)
        small = make_batches(args.row_by_row_records)
        conversion = best_of(runs, lambda: time_conversion(batches))

        def row_by_row_exporter() -> LogRecordExporter:
            return RowByRowExporter(TelemetryStore(Path(tmp) / f"rows-{next(numbers)}.duckdb"))

        # Interleaved, so that the ratios compare runs made in the same spell of this shared machine.
        exports = interleaved_bests(
            runs,
            {
                "alone": lambda: time_export(duckdb_exporter, batches),
                # The SDK's default batch (512): what a program using the exporter with defaults gets.
                "alone_sdk_batch": lambda: time_export(duckdb_exporter, sdk_batches),
                "row_by_row": lambda: time_export(row_by_row_exporter, small),
            },
        )
        export_alone, export_alone_sdk_batch = exports["alone"], exports["alone_sdk_batch"]
        row_by_row = exports["row_by_row"]
        # The control burns, in DuckDB, the CPU the exporter's own DuckDB work takes (export minus the
        # Python conversion).
        burn_rows = burn_rows_per_record((export_alone - conversion) / n * 1e6)
        emits = interleaved_emits(
            runs,
            {
                "null": (NullExporter, batch),
                "duckdb": (duckdb_exporter, batch),
                "default": (duckdb_exporter, BATCH),
                "burn": (lambda: BurnExporter(burn_rows), batch),
            },
            n,
        )
        (null_loop, null_total), (duck_loop, duck_total) = emits["null"], emits["duckdb"]
        default_loop, burn_loop = emits["default"][0], emits["burn"][0]

    us = {
        "sdk_emit_null_exporter": null_loop / n * 1e6,
        "sdk_emit_duckdb_exporter": duck_loop / n * 1e6,
        "sdk_emit_duckdb_exporter_sdk_default_batch": default_loop / n * 1e6,
        "duckdb_export_alone": export_alone / n * 1e6,
        "duckdb_export_alone_sdk_default_batch": export_alone_sdk_batch / n * 1e6,
        "duckdb_conversion_alone": conversion / n * 1e6,
        "row_by_row_executemany": row_by_row / args.row_by_row_records * 1e6,
    }
    result: dict[str, Any] = {
        "command": f"python -m bench.exporter_throughput --records {n} --row-by-row-records "
        f"{args.row_by_row_records} --runs {runs} --batch-size {batch}",
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "records": n,
        "batch_size": batch,
        "us_per_record": us,
        "records_per_second": {key: 1e6 / value for key, value in us.items()},
        "ratios": {
            "duckdb_export_vs_row_by_row": us["row_by_row_executemany"] / us["duckdb_export_alone"],
            "duckdb_export_vs_row_by_row_sdk_default_batch": us["row_by_row_executemany"]
            / us["duckdb_export_alone_sdk_default_batch"],
            "per_record_overhead_percent": 100 * (duck_loop - null_loop) / null_loop,
            "per_record_overhead_percent_sdk_default_batch": 100 * (default_loop - null_loop) / null_loop,
            "gil_held_conversion_vs_sdk_emit_percent": 100
            * us["duckdb_conversion_alone"]
            / us["sdk_emit_null_exporter"],
            "until_flushed_overhead_percent": 100 * (duck_total - null_total) / null_total,
            "control_same_duckdb_cpu_no_records_percent": 100 * (burn_loop - null_loop) / null_loop,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    labels = {
        "sdk_emit_null_exporter": "SDK emit, exporter that does nothing",
        "sdk_emit_duckdb_exporter": f"SDK emit, DuckDB exporter, batch {batch}",
        "sdk_emit_duckdb_exporter_sdk_default_batch": f"SDK emit, DuckDB exporter, batch {BATCH}",
        "duckdb_export_alone": f"DuckDB exporter export() alone, batch {batch}",
        "duckdb_export_alone_sdk_default_batch": f"DuckDB exporter export() alone, batch {BATCH}",
        "duckdb_conversion_alone": "  of which records to Arrow (holds the GIL)",
        "row_by_row_executemany": "row-by-row executemany exporter",
    }
    print(f"{'path':48} {'records/s':>12} {'us/record':>10}")
    for key, label in labels.items():
        print(f"{label:48} {1e6 / us[key]:>12,.0f} {us[key]:>10.2f}")
    ratios = result["ratios"]
    added, default_added = (
        ratios["per_record_overhead_percent"],
        ratios["per_record_overhead_percent_sdk_default_batch"],
    )
    print(
        f"\nDuckDB exporter vs row-by-row, batch {batch}: {ratios['duckdb_export_vs_row_by_row']:.0f}x faster"
    )
    sdk_batch_ratio = ratios["duckdb_export_vs_row_by_row_sdk_default_batch"]
    print(f"  at the SDK's default batch {BATCH}: {sdk_batch_ratio:.0f}x faster")
    print(f"Per-record cost added to the SDK's emit path, batch {batch}: {added:+.1f}%")
    print(f"  at the SDK's default batch {BATCH}: {default_added:+.1f}%")
    gil_share = ratios["gil_held_conversion_vs_sdk_emit_percent"]
    print(f"  GIL-held conversion alone: {gil_share:.1f}% of the emit cost")
    print(f"Until the final flush has stored everything: {ratios['until_flushed_overhead_percent']:+.1f}%")
    control = ratios["control_same_duckdb_cpu_no_records_percent"]
    print(f"Control, the same CPU spent in DuckDB without any record: {control:+.1f}%")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
