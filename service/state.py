"""What one running service holds: its store, exporters, telemetry pipeline and query layer."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from exporters.log_exporter import DuckDBLogRecordExporter
from exporters.span_exporter import DuckDBSpanExporter
from exporters.store import TelemetryStore
from exporters.store.pipelines import PipelineRepository
from exporters.store.queries import LogQueries
from instrumentation.telemetry import Telemetry
from service.runner import RunManager
from service.scheduler import Scheduler
from service.settings import Settings

EXTENSION_KEY = "pipetrace"


@dataclass
class ServiceState:
    settings: Settings
    store: TelemetryStore
    log_exporter: DuckDBLogRecordExporter
    span_exporter: DuckDBSpanExporter
    telemetry: Telemetry
    queries: LogQueries
    repository: PipelineRepository
    runs: RunManager
    scheduler: Scheduler
    # OTLP requests being stored now; full means the store is the bottleneck and clients should wait.
    ingest_slots: threading.BoundedSemaphore
    # Live-tail streams open now: each holds a request thread (service.tail).
    tail_slots: threading.BoundedSemaphore
    forwarders: list[Any] = field(default_factory=list)

    def unready_because(self) -> str | None:
        """Why records sent now would not be stored, or None: the store refuses a write (locked,
        corrupt, closed), or an exporter of the store cannot deliver or spool (breaker open, its last
        write failed, its spool full or unwritable). Forwarders are left out: the store still works."""
        problems = [self.store.check_writable()]
        problems += [exporter.delivery.problem() for exporter in (self.log_exporter, self.span_exporter)]
        found = [problem for problem in problems if problem is not None]
        return "; ".join(found) if found else None

    def ingest_counters(self) -> dict[str, Any]:
        """Each exporter's record counters, breaker state and spool size; forwarders by name."""
        counters: dict[str, Any] = {"logs": self.log_exporter.status(), "spans": self.span_exporter.status()}
        if self.forwarders:
            counters["forward"] = {exporter.delivery.name: exporter.status() for exporter in self.forwarders}
        return counters


def state(app: Flask | None = None) -> ServiceState:
    found: ServiceState = (app or current_app).extensions[EXTENSION_KEY]
    return found
