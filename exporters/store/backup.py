"""A consistent copy of the store while it is in use, as a DuckDB file of its own.

Copying ``telemetry.duckdb`` with ``cp`` is not a backup: after a crash, records the service had
acknowledged may live only in the ``.wal`` file beside it, and a copy taken while DuckDB writes can
be torn. DuckDB copies a database through its own transaction instead (``COPY FROM DATABASE``, every
table, index and sequence of one snapshot), into a file attached for the purpose. The store's write
lock is held meanwhile, so the copy also sits between two deliveries rather than inside one.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from exporters.store.connection import StoreUnavailable, TelemetryStore

_ALIAS = "pipetrace_backup"


class BackupError(Exception):
    """The backup could not be written (the destination exists, or its folder cannot be written)."""


def backup(store: TelemetryStore, destination: Path) -> int:
    """Write a consistent copy of ``store`` to ``destination`` (a new file); return its size in bytes."""
    destination = destination.resolve()
    if destination.exists():
        raise BackupError(f"{destination} exists already; a backup never overwrites a file")
    if not destination.parent.is_dir():
        raise BackupError(f"{destination.parent} is not a folder")
    partial = destination.with_name(f".{destination.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        with store.writer() as cur:
            source = cur.execute("SELECT current_database()").fetchone()
            assert source is not None
            cur.execute(f"ATTACH '{_quoted(partial)}' AS {_ALIAS}")
            try:
                cur.execute(f'COPY FROM DATABASE "{source[0]}" TO {_ALIAS}')
            finally:
                cur.execute(f"DETACH {_ALIAS}")
    except duckdb.Error as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, duckdb.IOException) and not os.access(destination.parent, os.W_OK):
            raise BackupError(f"cannot write in {destination.parent}") from exc
        raise
    except StoreUnavailable:
        partial.unlink(missing_ok=True)
        raise
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, destination)  # only a complete copy ever carries the destination's name
    directory = os.open(destination.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return destination.stat().st_size


def _quoted(path: Path) -> str:
    """A path as a SQL string literal's content (ATTACH takes no bound parameter)."""
    return str(path).replace("'", "''")
