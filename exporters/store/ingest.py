"""Storing batches: a delivery of log rows, or a batch of spans, each in one transaction.

The writer's cursor comes from ``exporters.store.connection``; the batch is visible to the statements
(``sql/insert_*.sql``) as ``incoming``.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from exporters.records import PIPELINE_ID, RUN_ID, STAGE
from exporters.store.statements import Statement, statement

# The keys promoted from attributes to columns, in the order ``sql/insert_logs.sql`` numbers them:
# bit i of ``promoted_keys`` and byte i of ``promoted_places`` are key i's.
PROMOTED_KEYS = ((PIPELINE_ID, "pipeline_id"), (RUN_ID, "run_id"), (STAGE, "stage"))

# Loaded now, not at the first insert, which may come from an ``atexit`` hook.
INSERT_DELIVERY = statement("insert_delivery")
LOG_STATEMENTS = (
    INSERT_DELIVERY,
    statement("insert_logs"),
    statement("insert_trace_windows"),
    statement("insert_search_grams"),
)
SPAN_STATEMENTS = (statement("insert_spans"),)

Results = list[list[tuple[Any, ...]]]


def insert(
    cur: duckdb.DuckDBPyConnection,
    statements: tuple[Statement, ...],
    time_column: str,
    batch: pa.Table,
    params: Mapping[str, int | str] | None = None,
) -> Results:
    """Run ``statements`` over ``batch`` (``incoming``) in one transaction on the writer's ``cur``;
    return each one's rows (an INSERT's is its count, or what it RETURNs). ``lo`` and ``hi`` are the
    batch's first and last ``time_column`` values. A delivery stored before (the first statement
    inserts its key and returns nothing) stops there: [] and nothing stored."""
    if batch.num_rows == 0:
        return []
    times = batch.column(time_column).cast(pa.int64())
    window = {"lo": pc.min(times).as_py(), "hi": pc.max(times).as_py(), **(params or {})}
    try:
        return _run_registered(cur, statements, window, batch)
    except duckdb.InvalidInputException as exc:
        if "interpreter is shutting down" not in str(exc):
            raise
        with transaction(cur):
            return insert_from_parquet(cur, statements, window, batch)


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


def _run_registered(
    cur: duckdb.DuckDBPyConnection,
    statements: tuple[Statement, ...],
    params: Mapping[str, int | str],
    batch: pa.Table,
) -> Results:
    """Run ``statements`` in one transaction with ``batch`` visible to them as ``incoming``.

    The batch is registered outside the transaction and let go after it ended, rolled back included:
    a clean-up statement run inside a failed transaction fails itself ("Current transaction is
    aborted"), and its error would hide the one that matters (a corrupt block, a full disk)."""
    cur.register("incoming", batch)
    try:
        with transaction(cur):
            return _run_all(cur, statements, params)
    finally:
        with contextlib.suppress(duckdb.Error):  # the cursor is closed after the write anyway
            cur.unregister("incoming")


def _run_all(
    cur: duckdb.DuckDBPyConnection, statements: tuple[Statement, ...], params: Mapping[str, int | str]
) -> Results:
    results = []
    for sql in statements:
        rows = sql.run(cur, params).fetchall()
        if sql is INSERT_DELIVERY and not rows:
            return []  # this delivery was stored before
        results.append(rows)
    return results


def insert_from_parquet(
    cur: duckdb.DuckDBPyConnection,
    statements: tuple[Statement, ...],
    window: Mapping[str, int | str],
    batch: pa.Table,
) -> Results:
    """Insert through a temporary Parquet file, which DuckDB reads without running Python code.

    DuckDB refuses to scan a Python-held Arrow table once the interpreter has begun to exit, and that
    is exactly when the SDK's batch processors make their last export (from an ``atexit`` hook). The
    file is ``incoming`` here: a view over it, so the statements are the same ones.
    """
    with tempfile.TemporaryDirectory(prefix="pipetrace-") as folder:
        path = Path(folder) / "batch.parquet"
        pq.write_table(batch, path)
        cur.read_parquet(str(path)).create_view("incoming")
        try:
            return _run_all(cur, statements, window)
        finally:
            with contextlib.suppress(duckdb.Error):  # after a failed statement the rollback drops it
                cur.execute("DROP VIEW IF EXISTS incoming")
