"""The telemetry store: one DuckDB file, its schema, ingest, queries and retention, in one package.

``connection`` owns the file (one read-write connection per process, cursors per thread, one writer
at a time); ``schema`` migrates it; ``ingest`` stores batches of logs and spans; ``search_index``
narrows search to the hours that can hold a match; ``queries`` reads pages, search, stats and
correlations and applies retention; ``pipelines`` keeps pipeline definitions and runs. Every
statement is a whole file in ``sql/``, with ``$named`` parameters.
"""

from exporters.store.connection import StoreUnavailable, TelemetryStore

__all__ = ["StoreUnavailable", "TelemetryStore"]
