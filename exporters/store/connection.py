"""The telemetry store: one DuckDB file, one owning connection per process.

DuckDB lets one process hold a file read-write. Inside that process every thread gets its own cursor
from the owner; writes are serialised by a lock because deduplication reads before it inserts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from exporters.records import PIPELINE_ID, RUN_ID, STAGE, LogRows
from exporters.store.schema import migrate
from exporters.store.search_index import BLOCK_NS, SearchIndex, grams_sql

_logger = logging.getLogger(__name__)

# DuckDB imports pandas lazily, on the first register() of whichever thread gets there first. When an
# exporter thread does that while the program's own thread imports pandas too (dlt does, in extract),
# one of them gets a half-initialised module. Importing it here, once, before any exporter thread runs,
# closes the race; programs without pandas are unaffected.
with contextlib.suppress(ImportError):
    import pandas  # noqa: F401

# Queries ordered and cut to at most this many rows (the log routes' pages: up to 1,000 and one
# more) find their rows on the filter and sort columns first and read the other columns for those
# rows only (DuckDB's late materialization; its default stops at 50 rows). Filtered pages gain a
# quarter, search windows lose a little: ``python -m bench.late_materialization`` measures both.
_CONNECTION_CONFIG: dict[str, str | bool | int | float | list[str]] = {"late_materialization_max_rows": 1024}

# Pipeline context is promoted from the record's attributes, else from its resource: ``own`` and
# ``inherited`` hold the keys' values in each, ``kinds`` their JSON types in the attributes, each read
# with one parse of the JSON for all three keys.
PROMOTED_KEYS = ((PIPELINE_ID, "pipeline_id"), (RUN_ID, "run_id"), (STAGE, "stage"))
_PATHS = "[" + ", ".join(f"""'$."{key}"'""" for key, _ in PROMOTED_KEYS) + "]"
_PROMOTED = ", ".join(
    f"coalesce(own[{i}], inherited[{i}]) AS {column}" for i, (_, column) in enumerate(PROMOTED_KEYS, 1)
)
# A promoted attribute that is a string is stored once, in its column, not again in ``attributes``:
# they repeat on every record of a run and were a quarter of the store's bytes. Bit i of
# ``promoted_keys`` says key i of PROMOTED_KEYS was such an attribute; readers put it back.
# Byte i of ``promoted_places`` is where key i stood among the record's attributes (1 = first), so
# that readers put it back in its place: attributes are returned in the order they were sent.
_PROMOTED_PLACES = " + ".join(
    f"CASE WHEN kinds[{bit + 1}] = 'VARCHAR' THEN "
    f"least(coalesce(list_position(json_keys(attributes), '{key}'), 0), 255)::UINTEGER << {8 * bit} "
    "ELSE 0 END"
    for bit, (key, _) in enumerate(PROMOTED_KEYS)
)
_PROMOTED_BITS = " + ".join(
    f"CASE WHEN kinds[{bit + 1}] = 'VARCHAR' THEN {1 << bit} ELSE 0 END" for bit in range(len(PROMOTED_KEYS))
)
_WITHOUT_PROMOTED = (
    "CASE promoted_keys "
    + " ".join(
        f"WHEN {mask} THEN json_merge_patch(attributes, "
        f"""'{json.dumps({key: None for bit, (key, _) in enumerate(PROMOTED_KEYS) if mask >> bit & 1})}')"""
        for mask in range(1, 1 << len(PROMOTED_KEYS))
    )
    + " ELSE attributes END::VARCHAR"
)
# The values of the attributes kept in columns, for search, which looks in every attribute value.
PROMOTED_ATTRIBUTE_VALUES = "concat_ws(chr(31), {})".format(
    ", ".join(
        f"CASE WHEN promoted_keys & {1 << bit} <> 0 THEN {column} END"
        for bit, (_, column) in enumerate(PROMOTED_KEYS)
    )
)
# The attributes arrive as one JSON array beside the rows (see ``exporters.records.LogRows``); it is
# split here, element i to row i.
_INCOMING_ROWS = """(
    SELECT * FROM incoming JOIN (
        SELECT unnest(range(len(list)))::INTEGER AS "row", unnest(list)::VARCHAR AS attributes
        FROM (SELECT json_extract($attributes, '$[*]') AS list)
    ) USING ("row")
)"""
# A delivery (see ``exporters.records.LogRows``) is stored once: its key goes in first, and a key
# already there means the batch was stored before, so nothing else runs. Every record of a new
# delivery is stored, identical ones included; its id is the delivery's key and its place in it.
_INSERT_DELIVERY = """
INSERT INTO deliveries VALUES ($key::UHUGEINT, $signal, make_timestamp_ns($now), $records)
ON CONFLICT DO NOTHING RETURNING 1
"""
_INSERT_LOGS = f"""
INSERT INTO logs BY NAME
SELECT * EXCLUDE (own, inherited, kinds, "row") REPLACE ({_WITHOUT_PROMOTED} AS attributes) FROM (
    SELECT *, {_PROMOTED}, ({_PROMOTED_BITS})::UTINYINT AS promoted_keys,
           ({_PROMOTED_PLACES})::UINTEGER AS promoted_places FROM (
        SELECT hash($key::UHUGEINT, "row") AS id, json_extract_string(attributes, {_PATHS}) AS own,
               json_extract_string(resource_attributes, {_PATHS}) AS inherited,
               json_type(attributes, {_PATHS}) AS kinds, *
        FROM {_INCOMING_ROWS}
    )
)
"""

# Each batch's traces and their time windows.
_INSERT_TRACE_WINDOWS = """
INSERT INTO trace_windows
SELECT hash(trace_id), min(timestamp), max(timestamp) FROM incoming WHERE trace_id IS NOT NULL GROUP BY ALL
"""

# The batch's (hour, gram) pairs the search index lacks; the new ones come back to update its copy in
# memory.
_INSERT_GRAMS = f"""
INSERT INTO search_grams
SELECT block, gram FROM ({grams_sql(_INCOMING_ROWS)}) AS fresh
WHERE NOT EXISTS (
    SELECT 1 FROM search_grams AS stored
    WHERE stored.block BETWEEN $lo // {BLOCK_NS} AND $hi // {BLOCK_NS}
      AND stored.block = fresh.block AND stored.gram = fresh.gram
)
RETURNING block, gram
"""

_LOG_STATEMENTS = (_INSERT_DELIVERY, _INSERT_LOGS, _INSERT_TRACE_WINDOWS, _INSERT_GRAMS)

_INSERT_SPANS = """
INSERT INTO spans BY NAME
SELECT * FROM (
    SELECT * FROM incoming QUALIFY row_number() OVER (PARTITION BY trace_id, span_id) = 1
) AS fresh
WHERE NOT EXISTS (
    SELECT 1 FROM (
        SELECT trace_id, span_id FROM spans
        WHERE start_time BETWEEN make_timestamp_ns($lo) AND make_timestamp_ns($hi)
    ) AS stored
    WHERE stored.trace_id = fresh.trace_id AND stored.span_id = fresh.span_id
)
"""


class StoreUnavailable(RuntimeError):
    """The database cannot be opened or used right now (locked by another process, unwritable...)."""


def _is_fatal(error: duckdb.Error) -> bool:
    """DuckDB invalidates a handle after a fatal error (disk full, for one); only a reopen helps."""
    return isinstance(error, duckdb.FatalException) or "invalidated" in str(error)


class TelemetryStore:
    """Owns the read-write connection to one DuckDB file and the schema in it.

    The file is opened on first use, not necessarily at construction: another process may hold it
    (DuckDB allows one writer per file), and the exporters spool until it can be opened. A handle that
    DuckDB invalidated is closed, and the next use opens the file again.
    """

    _open_stores: ClassVar[dict[str, TelemetryStore]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()
    _search_indexes: ClassVar[weakref.WeakValueDictionary[str, SearchIndex]] = weakref.WeakValueDictionary()
    _search_indexes_lock: ClassVar[threading.Lock] = threading.Lock()  # not the registry's: shared() holds it

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._connect_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._users = 1
        self._search_index = self._search_index_for(self.path)
        self._newest_log_ns: int | None = None
        self.schema_version = 0
        self.last_error: str | None = None
        try:
            self._open()
        except StoreUnavailable:
            _logger.warning("telemetry store %s is not available yet: %s", self.path, self.last_error)

    @classmethod
    def _search_index_for(cls, path: str) -> SearchIndex:
        """One in-memory search index per database file in this process, whichever store object
        writes: DuckDB lets two store objects of one process open the same file, and a copy that
        missed the other's inserts would hide their records from search. Held weakly, so a file
        opened again after every store of it is gone starts from its table."""
        if path == ":memory:":  # every in-memory connection is a database of its own
            return SearchIndex()
        key = _file_key(path)
        with cls._search_indexes_lock:
            index = cls._search_indexes.get(key)
            if index is None:
                index = cls._search_indexes[key] = SearchIndex()
            return index

    @classmethod
    def shared(cls, path: str | Path) -> TelemetryStore:
        """The store of this process for ``path``, opened on first use and counted per user.

        Exporters built from entry points (one for logs, one for spans) must share one connection,
        because a second read-write connection to the same file is refused.
        """
        key = _file_key(path)
        with cls._registry_lock:
            store = cls._open_stores.get(key)
            if store is not None and not store.closed:
                store._users += 1
                return store
            store = cls(path)
            cls._open_stores[key] = store
            return store

    @property
    def closed(self) -> bool:
        return self._users <= 0

    def _open(self) -> duckdb.DuckDBPyConnection:
        with self._connect_lock:
            if self._connection is not None:
                return self._connection
            if self.closed:
                raise StoreUnavailable(f"telemetry store {self.path} is closed")
            try:
                if self.path != ":memory:":
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                connection = duckdb.connect(self.path, config=_CONNECTION_CONFIG)
            except (duckdb.Error, OSError) as exc:
                self.last_error = str(exc)
                raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
            try:
                self.schema_version = migrate(connection)
            except Exception:
                connection.close()
                raise
            self._connection = connection
            if self.last_error is not None:
                _logger.info("telemetry store %s is open again", self.path)
            self.last_error = None
            return connection

    def _invalidate(self, error: duckdb.Error) -> None:
        with self._connect_lock:
            self.last_error = str(error)
            if self._connection is not None:
                _logger.error("telemetry store %s hit a fatal error; reopening: %s", self.path, error)
                with contextlib.suppress(duckdb.Error):
                    self._connection.close()
                self._connection = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for one thread's reads (or a short-lived write)."""
        return self._open().cursor()

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor that holds the write lock, for deletes and other multi-statement writes."""
        with self._write_lock:
            cur = self._open().cursor()
            try:
                yield cur
            except duckdb.Error as exc:
                if _is_fatal(exc):
                    self._invalidate(exc)
                raise
            finally:
                cur.close()

    def insert_logs(self, batch: LogRows) -> int:
        """Store a delivery of log rows unless it was stored before; return how many rows were stored."""
        key = batch.key if batch.key is not None else uuid.uuid4().int
        params: dict[str, int | str] = {
            "attributes": batch.attributes,
            "key": str(key),
            "signal": "logs",
            "now": time.time_ns(),
            "records": batch.num_rows,
        }
        results = self._insert(_LOG_STATEMENTS, "timestamp", batch.columns, params)
        if not results:
            return 0  # delivered before
        _, stored, _, grams = results
        # After the commit: a search running meanwhile sees the batch as if it had asked a moment
        # earlier. A concurrent load() reads the committed pairs too; adding them twice is harmless.
        self._search_index.add(grams)
        if self._newest_log_ns is not None and batch.columns.num_rows:
            newest = pc.max(batch.columns.column("timestamp").cast(pa.int64())).as_py()
            self._newest_log_ns = max(self._newest_log_ns, newest)
        return int(stored[0][0]) if stored else 0

    def insert_spans(self, batch: pa.Table) -> int:
        """Store spans not stored before (by trace and span id); return how many were new."""
        results = self._insert((_INSERT_SPANS,), "start_time", batch)
        if not results:
            return 0
        (stored,) = results
        return int(stored[0][0]) if stored else 0

    def search_index(self) -> SearchIndex:
        """The search index, read from the table on first use."""
        if not self._search_index.loaded:
            with self._write_lock:
                if not self._search_index.loaded:
                    cur = self._open().cursor()
                    try:
                        self._search_index.load(cur)
                    finally:
                        cur.close()
        return self._search_index

    def newest_log_ns(self) -> int | None:
        """The newest log timestamp stored, read once, then kept up by inserts (deletes leave it).

        Only a starting point for newest-first windows, which have no upper bound: a value a moment
        stale (an insert racing the first read) makes a window less apt, never an answer wrong.
        """
        if self._newest_log_ns is None:
            row = self.cursor().execute("SELECT epoch_ns(max(timestamp)) FROM logs").fetchone()
            if row is None or row[0] is None:
                return None
            self._newest_log_ns = int(row[0])
        return self._newest_log_ns

    def drop_search_hours_before(self, cur: duckdb.DuckDBPyConnection, before_ns: int) -> None:
        """Forget the hours wholly before ``before_ns`` (their logs were deleted), in the table and in
        memory. ``cur`` is the caller's writer cursor."""
        first_kept = before_ns // BLOCK_NS
        cur.execute("DELETE FROM search_grams WHERE block < ?", [first_kept])
        self._search_index.forget_before(first_kept)

    def _insert(
        self,
        statements: tuple[str, ...],
        time_column: str,
        batch: pa.Table,
        params: dict[str, int | str] | None = None,
    ) -> list[list[tuple[Any, ...]]]:
        """Run ``statements`` over ``batch`` (registered as ``incoming``) in one transaction; return
        each one's rows (an INSERT's is its count, or what it RETURNs). A delivery stored before
        (the first statement inserts its key and returns nothing) stops there: [] and nothing stored."""
        if batch.num_rows == 0:
            return []
        times = batch.column(time_column).cast(pa.int64())
        window = {"lo": pc.min(times).as_py(), "hi": pc.max(times).as_py(), **(params or {})}
        with self.writer() as cur:
            try:
                with _transaction(cur):
                    return _run_registered(cur, statements, window, batch)
            except duckdb.InvalidInputException as exc:
                if "interpreter is shutting down" not in str(exc):
                    raise
                with _transaction(cur):
                    return _insert_from_parquet(cur, statements, window, batch)

    def check_writable(self) -> str | None:
        """None when a write goes through; otherwise what went wrong. The write is rolled back."""
        try:
            with self.writer() as cur:
                cur.execute("BEGIN TRANSACTION")
                cur.execute("DELETE FROM schema_version WHERE version < 0")
                cur.execute("ROLLBACK")
        except (duckdb.Error, StoreUnavailable) as exc:
            return str(exc)
        return None

    def close(self) -> None:
        with self._registry_lock:
            self._users -= 1
            if self._users > 0:
                return
            for key, store in list(self._open_stores.items()):
                if store is self:
                    del self._open_stores[key]
        with self._connect_lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _file_key(path: str | Path) -> str:
    """One name per database file, however the path is spelt."""
    return str(path) if str(path) == ":memory:" else str(Path(path).resolve())


@contextmanager
def _transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
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
    cur: duckdb.DuckDBPyConnection, statements: tuple[str, ...], params: dict[str, int | str], batch: pa.Table
) -> list[list[tuple[Any, ...]]]:
    """Run ``statements`` with ``batch`` visible to them as ``incoming``."""
    cur.register("incoming", batch)
    try:
        return _run_all(cur, statements, params)
    finally:
        cur.unregister("incoming")


def _run_all(
    cur: duckdb.DuckDBPyConnection, statements: tuple[str, ...], params: dict[str, int | str]
) -> list[list[tuple[Any, ...]]]:
    results = []
    for statement in statements:
        # Each statement gets only the parameters it names: DuckDB refuses unused ones.
        used = {key: value for key, value in params.items() if f"${key}" in statement}
        rows = cur.execute(statement, used).fetchall()
        if statement == _INSERT_DELIVERY and not rows:
            return []  # this delivery was stored before
        results.append(rows)
    return results


def _insert_from_parquet(
    cur: duckdb.DuckDBPyConnection, statements: tuple[str, ...], window: dict[str, int | str], batch: pa.Table
) -> list[list[tuple[Any, ...]]]:
    """Insert through a temporary Parquet file, which DuckDB reads without running Python code.

    DuckDB refuses to scan a Python-held Arrow table once the interpreter has begun to exit, and that
    is exactly when the SDK's batch processors make their last export (from an ``atexit`` hook).
    """
    with tempfile.TemporaryDirectory(prefix="pipetrace-") as folder:
        path = Path(folder) / "batch.parquet"
        pq.write_table(batch, path)
        sql = tuple(s.replace("FROM incoming", "FROM read_parquet($batch_file)") for s in statements)
        return _run_all(cur, sql, {**window, "batch_file": str(path)})
