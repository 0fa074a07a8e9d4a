"""The telemetry store: one DuckDB file, one owning connection per process.

DuckDB lets one process hold a file read-write. Inside that process every thread gets its own cursor
from the owner; writes are serialised by a lock because deduplication reads before it inserts.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from exporters.records import LogRows
from exporters.store import ingest
from exporters.store.schema import migrate
from exporters.store.search_index import BLOCK_NS, SearchIndex, TimeSpan
from exporters.store.statements import record, statement

_logger = logging.getLogger(__name__)

# DuckDB imports pandas lazily, on the first scan of a Python object by whichever thread gets there first
# (``register()``, or the replacement scan the store reads its batches with). When an
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

# The memory one store may use (PIPETRACE_MEMORY_LIMIT): DuckDB gets seven eighths as its
# memory_limit (its buffers and operators, which spill to disk or fail past it), the in-memory
# search index one eighth (past it, search reads the index from the table).
DEFAULT_MEMORY_LIMIT = 512 * 2**20
SEARCH_INDEX_SHARE = 8

_NEWEST_LOG_TIME = statement("newest_log_time")
_SEARCH_SPAN = statement("search_span")
_DELETE_SEARCH_HOURS_BEFORE = statement("delete_search_hours_before")


class StoreUnavailable(RuntimeError):
    """The database cannot be opened or used right now (locked by another process, unwritable...)."""


def _needs_reopen(error: duckdb.Error) -> bool:
    """Errors of the file rather than of the statement: a handle DuckDB invalidated (disk full, for
    one), an I/O error, a block whose checksum fails. The handle is closed and the file opened again
    at the next use: a handle that met such an error is not trusted to write again, and a file whose
    trouble is gone (space freed, the file replaced) works again without a restart."""
    return (
        isinstance(error, duckdb.FatalException | duckdb.IOException | duckdb.InternalException)
        or "invalidated" in str(error)
        or "Corrupt database file" in str(error)
    )


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

    def __init__(self, path: str | Path, memory_limit: int | None = DEFAULT_MEMORY_LIMIT) -> None:
        self.path = str(path)
        self.memory_limit = memory_limit
        self._config = dict(_CONNECTION_CONFIG)
        if memory_limit is not None:
            self._config["memory_limit"] = f"{(memory_limit - memory_limit // SEARCH_INDEX_SHARE) // 1024}KiB"
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._connect_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._users = 1
        self._search_index = self._search_index_for(
            self.path, memory_limit // SEARCH_INDEX_SHARE if memory_limit is not None else None
        )
        self._newest_log_ns: int | None = None
        self.schema_version = 0
        self.last_error: str | None = None
        with contextlib.suppress(StoreUnavailable):  # logged; the next use tries again
            self._open()

    @classmethod
    def _search_index_for(cls, path: str, budget: int | None) -> SearchIndex:
        """One in-memory search index per database file in this process, whichever store object
        writes: DuckDB lets two store objects of one process open the same file, and a copy that
        missed the other's inserts would hide their records from search. Held weakly, so a file
        opened again after every store of it is gone starts from its table."""
        if path == ":memory:":  # every in-memory connection is a database of its own
            return SearchIndex(budget)
        key = _file_key(path)
        with cls._search_indexes_lock:
            index = cls._search_indexes.get(key)
            if index is None:
                index = cls._search_indexes[key] = SearchIndex(budget)
            return index

    @classmethod
    def shared(cls, path: str | Path, memory_limit: int | None = DEFAULT_MEMORY_LIMIT) -> TelemetryStore:
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
            store = cls(path, memory_limit)
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
                connection = duckdb.connect(self.path, config=self._config)
            except (duckdb.Error, OSError) as exc:
                raise self._unavailable(exc) from exc
            try:
                self.schema_version = migrate(connection)
            except duckdb.Error as exc:  # a damaged catalog, a full disk while migrating
                connection.close()
                raise self._unavailable(exc) from exc
            except Exception:
                connection.close()
                raise
            self._connection = connection
            if self.last_error is not None:
                _logger.info("telemetry store %s is open again", self.path)
            self.last_error = None
            return connection

    def _unavailable(self, error: Exception) -> StoreUnavailable:
        """Remember why the file cannot be used, and say so once per cause (opening is retried at
        every use while it fails: one line per attempt would drown the log)."""
        if str(error) != self.last_error:
            _logger.error("telemetry store %s cannot be opened: %s", self.path, error)
        self.last_error = str(error)
        return StoreUnavailable(f"cannot open {self.path}: {error}")

    def _invalidate(self, error: duckdb.Error) -> None:
        with self._connect_lock:
            self.last_error = str(error)
            if self._connection is not None:
                _logger.error("telemetry store %s failed; reopening it: %s", self.path, error)
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
                if _needs_reopen(exc):
                    self._invalidate(exc)
                raise
            finally:
                cur.close()

    def insert_logs(self, batch: LogRows) -> int:
        """Store a delivery of log rows unless it was stored before; return how many rows were stored."""
        key = batch.key if batch.key is not None else uuid.uuid4().int
        params: dict[str, int | str] = {
            "key": str(key),
            "signal": "logs",
            "now": time.time_ns(),
            "records": batch.num_rows,
        }
        if batch.num_rows == 0:
            return 0
        with self.writer() as cur:
            stored = ingest.insert_logs(cur, batch, self._search_index, params)
        if stored is None:
            return 0  # delivered before
        # After the commit: a search running meanwhile sees the batch as if it had asked a moment
        # earlier. A concurrent load() reads the committed pairs too; adding them twice is harmless.
        self._search_index.add(stored.grams)
        if self._newest_log_ns is not None:
            newest = pc.max(batch.columns.column("timestamp").cast(pa.int64())).as_py()
            self._newest_log_ns = max(self._newest_log_ns, newest)
        return stored.rows

    def insert_spans(self, batch: pa.Table) -> int:
        """Store spans not stored before (by trace and span id); return how many were new."""
        if batch.num_rows == 0:
            return 0
        with self.writer() as cur:
            return ingest.insert_spans(cur, batch)

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

    def search_span(self, grams: set[str]) -> TimeSpan | None:
        """Where records holding every one of ``grams`` can be (None: nowhere), from the index in
        memory, or from its table when the copy was dropped for its size."""
        index = self.search_index()
        if index.in_memory:
            return index.span(grams)
        row = record(_SEARCH_SPAN.run(self.cursor(), {"grams": sorted(grams)}))
        if row is None or row["first_block"] is None:
            return None
        return TimeSpan.of_blocks(row["first_block"], row["last_block"])

    def newest_log_ns(self) -> int | None:
        """The newest log timestamp stored, read once, then kept up by inserts (deletes leave it).

        Only a starting point for newest-first windows, which have no upper bound: a value a moment
        stale (an insert racing the first read) makes a window less apt, never an answer wrong.
        """
        if self._newest_log_ns is None:
            row = record(_NEWEST_LOG_TIME.run(self.cursor(), {}))
            if row is None or row["newest_ns"] is None:
                return None
            self._newest_log_ns = int(row["newest_ns"])
        return self._newest_log_ns

    def drop_search_hours_before(self, cur: duckdb.DuckDBPyConnection, before_ns: int) -> None:
        """Forget the hours wholly before ``before_ns`` (their logs were deleted), in the table and in
        memory. ``cur`` is the caller's writer cursor."""
        first_kept = before_ns // BLOCK_NS
        _DELETE_SEARCH_HOURS_BEFORE.run(cur, {"first_kept_block": first_kept})
        self._search_index.forget_before(first_kept)

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
