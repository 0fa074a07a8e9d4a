"""What both DuckDB exporters share: which store they write to, their counters, and shutdown."""

from __future__ import annotations

from pathlib import Path

from exporters.counters import ExportCounters
from exporters.settings import ExporterSettings
from exporters.store import TelemetryStore


class StoreExporter:
    """Writes to ``store`` when given one (the service's), else to the process's shared store for
    ``path`` or, with no arguments (an entry point), for ``PIPETRACE_DB``; only that one is closed here.
    """

    def __init__(self, path: str | Path | None = None, *, store: TelemetryStore | None = None) -> None:
        self._owns_store = store is None
        if store is None:
            store = TelemetryStore.shared(path if path is not None else ExporterSettings().database)
        self.store = store
        self.counters = ExportCounters()
        self._shut_down = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every export() writes synchronously: nothing is ever pending here

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        if self._owns_store:
            self.store.close()
