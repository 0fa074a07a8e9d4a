"""What both DuckDB exporters share: their store, their settings, counters and resilient delivery."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from exporters.counters import ExportCounters
from exporters.resilience import ResilientDelivery
from exporters.settings import ExporterSettings
from exporters.store import TelemetryStore

T = TypeVar("T")


class ResilientExporter(Generic[T]):
    """Delivers batches through :class:`ResilientDelivery`; subclasses say how to send and spool them."""

    signal: ClassVar[str]
    sink: ClassVar[str]

    def __init__(self, settings: ExporterSettings) -> None:
        self.settings = settings
        self.counters = ExportCounters()
        self.delivery: ResilientDelivery[T] = ResilientDelivery(
            f"{self.sink}-{self.signal}", self, settings, self.counters
        )

    def send(self, batch: Sequence[T]) -> bool:
        raise NotImplementedError

    def encode(self, batch: Sequence[T]) -> bytes:
        raise NotImplementedError

    def decode(self, payload: bytes) -> Sequence[T]:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        return {**self.counters.snapshot(), **self.delivery.status()}

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every export() delivers or spools before it returns: nothing is pending here

    def shutdown(self) -> None:
        self.delivery.shutdown()


class StoreExporter(ResilientExporter[T]):
    """Writes to ``store`` when given one (the service's), else to the process's shared store for
    ``path`` or, with no arguments (an entry point), for ``PIPETRACE_DB``; only that one is closed here.

    Other keyword arguments are the fault-tolerance settings, as an ``otel-config.yaml`` passes them.
    """

    sink = "duckdb"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        store: TelemetryStore | None = None,
        settings: ExporterSettings | None = None,
        **properties: Any,
    ) -> None:
        if settings is None:
            settings = ExporterSettings.with_properties(path=path, **properties)
        self._owns_store = store is None
        # Built on its own (an SDK's entry point in any program), nothing has redacted the records it
        # gets: it does, with the default policy. Handed the service's store, it sits behind the
        # service's processors, which already did (with the service's own settings).
        self.redacts = store is None
        self.store = (
            store if store is not None else TelemetryStore.shared(settings.database, settings.memory_limit)
        )
        self._shut_down = False
        super().__init__(settings)

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        super().shutdown()
        if self._owns_store:
            self.store.close()
