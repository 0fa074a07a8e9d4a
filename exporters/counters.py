"""Thread-safe counters an exporter keeps about itself, reported under ``ingest`` by the service."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class ExportCounters:
    exported: int = 0
    duplicates: int = 0
    failed: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_exported(self, stored: int, received: int) -> None:
        """``received`` records were written; ``stored`` of them were new, the rest already there."""
        with self._lock:
            self.exported += stored
            self.duplicates += received - stored

    def add_failed(self, count: int) -> None:
        with self._lock:
            self.failed += count

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "exported": self.exported,
                "duplicates": self.duplicates,
                "failed": self.failed,
                "spooled": self.spooled,
                "replayed": self.replayed,
                "dropped": self.dropped,
            }
