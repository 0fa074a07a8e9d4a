"""Thread-safe counters an exporter keeps about itself, reported under ``ingest`` by the service."""

from __future__ import annotations

import threading

COUNTERS = ("exported", "duplicates", "failed", "retried", "spooled", "replayed", "quarantined", "dropped")


class ExportCounters:
    """Record counts: ``exported`` newly stored, ``duplicates`` already there, the rest as named."""

    def __init__(self) -> None:
        self._values = dict.fromkeys(COUNTERS, 0)
        self._lock = threading.Lock()

    def add(self, name: str, count: int) -> None:
        with self._lock:
            self._values[name] += count

    def get(self, name: str) -> int:
        with self._lock:
            return self._values[name]

    def add_exported(self, stored: int, received: int) -> None:
        """``received`` records were written; ``stored`` of them were new, the rest already there."""
        with self._lock:
            self._values["exported"] += stored
            self._values["duplicates"] += received - stored

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)
