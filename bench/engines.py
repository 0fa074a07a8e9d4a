"""The engines the store benchmark compares, each loading the same Parquet file and answering the same
questions. Each engine runs in a process of its own (``python -m bench.engines <engine> <parquet>
<count>``), so their memory and caches stay apart: it loads, then answers the driver's commands, one
JSON line in and one out (``serve``), so the driver can interleave the engines round by round.

* ``pipetrace``: our store, loaded through ``TelemetryStore.insert_logs`` in batches of 8192 (the
  exporter's path) and queried through ``LogQueries``, the layer the routes use.
* ``sqlite``: one table with B-tree indexes for each query's filter and sort, and an FTS5 index with
  the trigram tokenizer, which answers case-insensitive substring search as our routes define it.
* ``chdb``: ClickHouse in-process with the OpenTelemetry Collector's ``otel_logs`` DDL (codecs,
  bloom-filter and token indexes, partition by day, ordered by service and time).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from bench.dataset import ABSENT_WORD, COMMON_WORD, RARE_WORD, Probe, probe

HOUR_NS = 3_600 * 1_000_000_000
DAY_NS = 24 * HOUR_NS
LIMIT = 100
ERROR = 17


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1e3, "p95_ms": p95 * 1e3, "runs": len(ordered)}


def _samples(query: Callable[[], Any], runs: int) -> list[float]:
    query()  # warm: the first run pays for reading blocks from disk, which a serving store has cached
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        query()
        samples.append(time.perf_counter() - started)
    return samples


class PeakRss:
    """Samples this process's resident memory every 20 ms; ``peak_mb`` is the highest seen."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self._process.memory_info().rss) / 2**20


# The OTLP fields the common dataset does not vary (the peers store none of them), as the exporter
# sends them for records that have their own times, plain attributes and nothing dropped.
_OTLP_DEFAULTS: dict[str, object] = {
    "time_absent": False,
    "body_value": None,
    "scope_schema_url": None,
    "scope_attributes": None,
    "scope_dropped_attributes_count": 0,
    "typed_values": False,
    "dropped_attributes_count": 0,
    "resource_schema_url": None,
    "resource_dropped_attributes_count": 0,
}


def _with_otlp_fields(table: pa.Table) -> pa.Table:
    from exporters.records import LOG_ROW_SCHEMA

    for name, value in _OTLP_DEFAULTS.items():
        field = LOG_ROW_SCHEMA.field(name)
        table = table.append_column(name, pa.repeat(pa.scalar(value, field.type), table.num_rows))
    return table


class Pipetrace:
    name = "pipetrace"

    def __init__(self, folder: Path) -> None:
        from exporters.store import TelemetryStore
        from exporters.store.queries import LogQueries

        self.path = folder / "telemetry.duckdb"
        self.store = TelemetryStore(self.path)
        self.queries = LogQueries(self.store)

    def load(self, parquet: Path) -> None:
        from exporters.records import LOG_ROW_SCHEMA, LogRows

        for batch in pq.ParquetFile(parquet).iter_batches(batch_size=8192):
            table = pa.Table.from_batches([batch])
            attributes = "[" + ",".join(table.column("attributes").to_pylist()) + "]"
            rows = table.num_rows
            columns = table.drop_columns(["attributes"]).append_column(
                "row", pa.array(range(rows), pa.int32())
            )
            columns = _with_otlp_fields(columns.rename_columns({"trace_flags": "flags"}))
            self.store.insert_logs(
                LogRows(columns.select(LOG_ROW_SCHEMA.names).cast(LOG_ROW_SCHEMA), attributes)
            )
        self.store.cursor().execute("CHECKPOINT")

    def size_bytes(self) -> int:
        return os.path.getsize(self.path)

    def queries_for(self, p: Probe) -> dict[str, Callable[[], Any]]:
        from exporters.store.queries import LogFilter

        q = self.queries
        last_hour = LogFilter(since_ns=p.end_ns - HOUR_NS, until_ns=p.end_ns)
        return {
            "trace": lambda: q.correlation(p.trace_id),
            "pipeline_page": lambda: q.pipeline_logs(LogFilter(pipeline_id=p.pipeline_id), LIMIT),
            "pipeline_errors": lambda: q.pipeline_logs(
                LogFilter(pipeline_id=p.pipeline_id, min_severity=ERROR), LIMIT
            ),
            "search_common": lambda: q.search(COMMON_WORD, LogFilter(), LIMIT),
            "search_rare": lambda: q.search(RARE_WORD, LogFilter(), LIMIT),
            "search_absent": lambda: q.search(ABSENT_WORD, LogFilter(), LIMIT),
            "stats_all": lambda: q.stats(LogFilter()),
            "stats_last_hour": lambda: q.stats(last_hour, now_ns=p.end_ns),
        }

    def cleanup(self, before_ns: int) -> None:
        self.queries.cleanup(before_ns)


_SQLITE_SCHEMA = """
CREATE TABLE logs (
    id INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL, observed_timestamp INTEGER, trace_id TEXT,
    span_id TEXT, trace_flags INTEGER, severity_text TEXT, severity_number INTEGER, service_name TEXT,
    body TEXT, event_name TEXT, scope_name TEXT, scope_version TEXT, pipeline_id TEXT, run_id TEXT,
    stage TEXT, attributes TEXT, resource_attributes TEXT
);
"""
_SQLITE_INDEXES = """
CREATE INDEX logs_trace ON logs (trace_id, timestamp);
CREATE INDEX logs_pipeline ON logs (pipeline_id, timestamp);
CREATE INDEX logs_pipeline_level ON logs (pipeline_id, severity_number, timestamp);
CREATE INDEX logs_time ON logs (timestamp, severity_number);
CREATE VIRTUAL TABLE logs_fts USING fts5(
    body, attributes, content='logs', content_rowid='id', tokenize='trigram'
);
INSERT INTO logs_fts (logs_fts) VALUES ('rebuild');
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts (logs_fts, rowid, body, attributes)
    VALUES ('delete', old.id, old.body, old.attributes);
END;
"""
_SQLITE_COLUMNS = """
    epoch_ns(timestamp), epoch_ns(observed_timestamp), trace_id, span_id, trace_flags, severity_text,
    severity_number, service_name, body, event_name, scope_name, scope_version,
    json_extract_string(attributes, '$."pipeline.id"'),
    json_extract_string(attributes, '$."pipeline.run_id"'),
    json_extract_string(attributes, '$."pipeline.stage"'), attributes, resource_attributes
"""


class SQLite:
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.path = folder / "logs.sqlite"
        self.con = sqlite3.connect(self.path, check_same_thread=False)
        self.con.execute("PRAGMA journal_mode = WAL")
        self.con.execute("PRAGMA synchronous = NORMAL")
        self.con.executescript(_SQLITE_SCHEMA)

    def load(self, parquet: Path) -> None:
        reader = duckdb.connect()
        reader.execute("SET enable_progress_bar = false")
        result = reader.execute(f"SELECT {_SQLITE_COLUMNS} FROM read_parquet(?)", [str(parquet)])
        placeholders = ", ".join("?" * 17)
        while rows := result.fetchmany(50_000):
            self.con.executemany(
                f"""INSERT INTO logs (timestamp, observed_timestamp, trace_id, span_id, trace_flags,
                    severity_text, severity_number, service_name, body, event_name, scope_name,
                    scope_version, pipeline_id, run_id, stage, attributes, resource_attributes)
                    VALUES ({placeholders})""",
                rows,
            )
        self.con.executescript(_SQLITE_INDEXES)
        self.con.commit()
        self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def size_bytes(self) -> int:
        return sum(os.path.getsize(f) for f in self.path.parent.glob("logs.sqlite*"))

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self.con.execute(sql, params).fetchall()

    def _stats(self, where: str = "", params: tuple[Any, ...] = ()) -> None:
        self._all(f"SELECT severity_number, count(*) FROM logs {where} GROUP BY 1", params)
        self._all(
            f"""SELECT pipeline_id, count(*) AS n, sum(severity_number >= {ERROR}) FROM logs {where}
                GROUP BY 1 ORDER BY n DESC LIMIT 100""",
            params,
        )
        self._all(
            f"""SELECT timestamp / 3600000000000, severity_number, count(*) FROM logs {where}
                GROUP BY 1, 2""",
            params,
        )

    def _search(self, word: str) -> list[Any]:
        return self._all(
            """SELECT * FROM logs WHERE id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ?)
               ORDER BY timestamp DESC LIMIT ?""",
            (f'"{word}"', LIMIT + 1),
        )

    def queries_for(self, p: Probe) -> dict[str, Callable[[], Any]]:
        hour = "WHERE timestamp >= ? AND timestamp < ?"
        return {
            "trace": lambda: self._all(
                "SELECT * FROM logs WHERE trace_id = ? ORDER BY timestamp", (p.trace_id,)
            ),
            "pipeline_page": lambda: self._all(
                "SELECT * FROM logs WHERE pipeline_id = ? ORDER BY timestamp DESC LIMIT ?",
                (p.pipeline_id, LIMIT + 1),
            ),
            "pipeline_errors": lambda: self._all(
                """SELECT * FROM logs WHERE pipeline_id = ? AND severity_number >= ?
                   ORDER BY timestamp DESC LIMIT ?""",
                (p.pipeline_id, ERROR, LIMIT + 1),
            ),
            "search_common": lambda: self._search(COMMON_WORD),
            "search_rare": lambda: self._search(RARE_WORD),
            "search_absent": lambda: self._search(ABSENT_WORD),
            "stats_all": lambda: self._stats(),
            "stats_last_hour": lambda: self._stats(hour, (p.end_ns - HOUR_NS, p.end_ns)),
        }

    def cleanup(self, before_ns: int) -> None:
        self.con.execute("DELETE FROM logs WHERE timestamp < ?", (before_ns,))
        self.con.commit()


# The OpenTelemetry Collector's ClickHouse exporter DDL for otel_logs (schema of exporter v0.1xx).
_CHDB_SCHEMA = """
CREATE TABLE bench.otel_logs (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    EventName String CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree
PARTITION BY toDate(TimestampTime)
PRIMARY KEY (ServiceName, TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""


def _q(text: str) -> str:
    """A ClickHouse string literal (the benchmark's own constants only)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ChDB:
    name = "chdb"

    def __init__(self, folder: Path) -> None:
        from chdb import session

        self.path = folder / "chdb"
        self.session = session.Session(str(self.path))
        self.session.query("CREATE DATABASE IF NOT EXISTS bench")
        self.session.query(_CHDB_SCHEMA)

    def _all(self, sql: str) -> Any:
        return self.session.query(sql, "ArrowTable")

    def load(self, parquet: Path) -> None:
        self.session.query(
            f"""INSERT INTO bench.otel_logs (Timestamp, TraceId, SpanId, TraceFlags, SeverityText,
                SeverityNumber, ServiceName, Body, ResourceAttributes, ScopeName, ScopeVersion,
                LogAttributes, EventName)
                SELECT timestamp, trace_id, span_id, trace_flags, severity_text, severity_number,
                       service_name, body,
                       JSONExtract(assumeNotNull(resource_attributes), 'Map(String, String)'),
                       scope_name, ifNull(scope_version, ''),
                       JSONExtract(assumeNotNull(attributes), 'Map(String, String)'),
                       ifNull(event_name, '')
                FROM file({_q(str(parquet))}, Parquet)"""
        )
        self.session.query("OPTIMIZE TABLE bench.otel_logs FINAL")

    def size_bytes(self) -> int:
        table = self._all(
            "SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE database = 'bench' AND active"
        )
        return int(table.column("b")[0].as_py())

    def _stats(self, where: str = "") -> None:
        self._all(f"SELECT SeverityNumber, count() FROM bench.otel_logs {where} GROUP BY 1")
        self._all(
            f"""SELECT LogAttributes['pipeline.id'] AS p, count() AS n, countIf(SeverityNumber >= {ERROR})
                FROM bench.otel_logs {where} GROUP BY p ORDER BY n DESC LIMIT 100"""
        )
        self._all(
            f"""SELECT toStartOfHour(Timestamp) AS b, SeverityNumber, count() FROM bench.otel_logs {where}
                GROUP BY b, SeverityNumber"""
        )

    def _search(self, word: str) -> Any:
        w = _q(word.lower())
        # Case-insensitive substring in the body (the token index on lower(Body) skips granules that
        # cannot hold the word's tokens) or in any attribute value.
        return self._all(
            f"""SELECT * FROM bench.otel_logs
                WHERE (lower(Body) LIKE {_q("%" + word.lower() + "%")}
                       AND positionCaseInsensitive(Body, {w}) > 0)
                   OR arrayExists(v -> positionCaseInsensitive(v, {w}) > 0, mapValues(LogAttributes))
                ORDER BY Timestamp DESC LIMIT {LIMIT + 1}"""
        )

    def queries_for(self, p: Probe) -> dict[str, Callable[[], Any]]:
        pipeline = f"LogAttributes['pipeline.id'] = {_q(p.pipeline_id)}"
        lo, hi = p.end_ns - HOUR_NS, p.end_ns
        hour = (
            f"WHERE Timestamp >= fromUnixTimestamp64Nano({lo}) AND Timestamp < fromUnixTimestamp64Nano({hi})"
        )
        return {
            "trace": lambda: self._all(
                f"SELECT * FROM bench.otel_logs WHERE TraceId = {_q(p.trace_id)} ORDER BY Timestamp"
            ),
            "pipeline_page": lambda: self._all(
                f"SELECT * FROM bench.otel_logs WHERE {pipeline} ORDER BY Timestamp DESC LIMIT {LIMIT + 1}"
            ),
            "pipeline_errors": lambda: self._all(
                f"""SELECT * FROM bench.otel_logs WHERE {pipeline} AND SeverityNumber >= {ERROR}
                    ORDER BY Timestamp DESC LIMIT {LIMIT + 1}"""
            ),
            "search_common": lambda: self._search(COMMON_WORD),
            "search_rare": lambda: self._search(RARE_WORD),
            "search_absent": lambda: self._search(ABSENT_WORD),
            "stats_all": lambda: self._stats(),
            "stats_last_hour": lambda: self._stats(hour),
        }

    def cleanup(self, before_ns: int) -> None:
        # Retention in ClickHouse is dropping whole day partitions (what TTL with ttl_only_drop_parts does).
        day = time.strftime("%Y-%m-%d", time.gmtime((before_ns - DAY_NS) / 1e9))
        self.session.query(f"ALTER TABLE bench.otel_logs DROP PARTITION {_q(day)}")


ENGINES = {"pipetrace": Pipetrace, "sqlite": SQLite, "chdb": ChDB}


def serve(engine: str, parquet: Path, count: int) -> None:
    """Load ``parquet`` into a new ``engine`` store, then answer the driver's commands on stdin.

    Replies (one JSON line each) to: the load (records/s, bytes a record); ``{"do": "time", "runs": n,
    "heavy_runs": m}`` with each query's timings in seconds; ``{"do": "cleanup", "before_ns": t}`` with
    that cleanup's seconds; ``{"do": "finish"}`` with the process's peak memory, then exits.
    """
    memory = PeakRss()
    with tempfile.TemporaryDirectory(prefix=f"bench-{engine}-") as folder:
        store = ENGINES[engine](Path(folder))
        started = time.perf_counter()
        store.load(parquet)
        load_seconds = time.perf_counter() - started
        size = store.size_bytes()
        _reply({"load_records_per_second": count / load_seconds, "bytes_per_record": size / count})
        queries = store.queries_for(probe(count))
        for line in sys.stdin:
            command = json.loads(line)
            if command["do"] == "time":
                samples = {}
                for name, query in queries.items():
                    heavy = name.startswith("stats") or name.startswith("search")
                    samples[name] = _samples(query, command["heavy_runs" if heavy else "runs"])
                _reply({"samples": samples})
            elif command["do"] == "cleanup":
                started = time.perf_counter()
                store.cleanup(command["before_ns"])
                _reply({"seconds": time.perf_counter() - started})
            elif command["do"] == "finish":
                break
    _reply({"peak_rss_mb": memory.stop()})


def _reply(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
