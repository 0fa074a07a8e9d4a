"""Storing batches: a delivery of log rows, or a batch of spans, each in one transaction.

The writer's cursor comes from ``exporters.store.connection``; the batch is visible to the statements
(``sql/insert_*.sql``) as ``incoming``.

A batch of logs runs as few statements as it can, because at the OTel SDK's batch of 512 records each
statement's fixed cost (planning it, scanning the registered batch) is most of the insert's time
(``bench.exporter_throughput``): the delivery's key, the rows, then the trace windows only when a
record has a trace, and the search index's grams only when the batch brings a new one.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from exporters.records import LogRows
from exporters.store.search_index import BLOCK_NS, SearchIndex, text_grams
from exporters.store.statements import statement

# Loaded now, not at the first insert, which may come from an ``atexit`` hook.
_INSERT_DELIVERY = statement("insert_delivery")
_INSERT_LOGS = statement("insert_logs")
_INSERT_PROMOTED_LOGS = statement("insert_promoted_logs")
_INSERT_TRACE_WINDOWS = statement("insert_trace_windows")
_INSERT_SEARCH_GRAMS = statement("insert_search_grams")
_INSERT_BLOCK_GRAMS = statement("insert_block_grams")
_INSERT_SPANS = statement("insert_spans")

T = TypeVar("T")


@dataclass(frozen=True)
class StoredLogs:
    """What an insert of logs stored: its row count and the (hour, gram) pairs new to the index."""

    rows: int
    grams: list[tuple[int, str]]


class _DeliveredBefore(Exception):
    """The delivery's key is stored already: the batch was stored before (and is rolled back now)."""


def insert_logs(
    cur: duckdb.DuckDBPyConnection,
    rows: LogRows,
    index: SearchIndex,
    params: Mapping[str, int | str],
    via_parquet: bool = False,
) -> StoredLogs | None:
    """Store a delivery of log rows in one transaction on the writer's ``cur``, unless its key was
    stored before (None: nothing stored). ``params`` are the delivery's (key, signal, now, records)."""
    batch = rows.columns
    if batch.num_rows == 0:
        return StoredLogs(0, [])
    times = batch.column("timestamp").cast(pa.int64())
    lo, hi = pc.min(times).as_py(), pc.max(times).as_py()
    values: dict[str, Any] = {
        **params,
        "lo": lo,
        "hi": hi,
        "attributes": rows.attributes,
        "stored_attributes": rows.stored_attributes,
    }
    one_hour = lo // BLOCK_NS == hi // BLOCK_NS
    grams = text_grams(rows.search_text) if rows.search_text is not None and one_hour else None
    has_traces = batch.column("trace_id").null_count < batch.num_rows

    def run() -> StoredLogs:
        _insert_delivery(cur, values)
        if rows.stored_attributes is not None:
            (stored,) = _INSERT_PROMOTED_LOGS.run(cur, values, batch).fetchall()
        else:
            (stored,) = _INSERT_LOGS.run(cur, values, batch).fetchall()
        if has_traces:
            _INSERT_TRACE_WINDOWS.run(cur, values, batch)
        if grams is None:
            found = _INSERT_SEARCH_GRAMS.run(cur, values, batch).fetchall()
            new = [(int(block), str(gram)) for block, gram in found]
        else:
            block = lo // BLOCK_NS
            fresh = index.missing(cur, block, grams)
            if fresh:
                _INSERT_BLOCK_GRAMS.run(cur, {"block": block, "grams": fresh})
            new = [(block, gram) for gram in fresh]
        return StoredLogs(int(stored[0]), new)

    try:
        return _in_transaction(cur, batch, run, via_parquet)
    except _DeliveredBefore:
        return None


def _insert_delivery(cur: duckdb.DuckDBPyConnection, values: Mapping[str, Any]) -> None:
    try:
        _INSERT_DELIVERY.run(cur, values)
    except duckdb.ConstraintException as exc:  # the key, the table's only constraint a value can break
        raise _DeliveredBefore from exc


def insert_spans(cur: duckdb.DuckDBPyConnection, batch: pa.Table) -> int:
    """Store the spans of ``batch`` not stored before (by trace and span id); return how many."""
    if batch.num_rows == 0:
        return 0
    times = batch.column("start_time").cast(pa.int64())
    values = {"lo": pc.min(times).as_py(), "hi": pc.max(times).as_py()}

    def run() -> int:
        (stored,) = _INSERT_SPANS.run(cur, values, batch).fetchall()
        return int(stored[0])

    return _in_transaction(cur, batch, run)


def _in_transaction(
    cur: duckdb.DuckDBPyConnection, batch: pa.Table, run: Callable[[], T], via_parquet: bool = False
) -> T:
    """``run`` in one transaction; its statements read ``batch`` as ``incoming`` (``Statement.run``).

    DuckDB refuses to scan a Python-held Arrow table once the interpreter has begun to exit, and that
    is exactly when the SDK's batch processors make their last export (from an ``atexit`` hook). Then
    the batch goes through a temporary Parquet file, which DuckDB reads without running Python code:
    ``incoming`` is a view over it, so the statements are the same ones.
    """
    if not via_parquet:
        try:
            with transaction(cur):
                return run()
        except duckdb.InvalidInputException as exc:
            if "interpreter is shutting down" not in str(exc):
                raise
    with tempfile.TemporaryDirectory(prefix="pipetrace-") as folder:
        path = Path(folder) / "batch.parquet"
        pq.write_table(batch, path)
        with transaction(cur), _parquet_view(cur, path):
            return run()


@contextmanager
def transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Commit what the block did, or roll all of it back."""
    cur.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


@contextmanager
def _parquet_view(cur: duckdb.DuckDBPyConnection, path: Path) -> Iterator[None]:
    cur.read_parquet(str(path)).create_view("incoming")
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # after a failed statement the rollback drops it
            cur.execute("DROP VIEW IF EXISTS incoming")
