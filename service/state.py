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
    forwarders: list[Any] = field(default_factory=list)

    def ingest_counters(self) -> dict[str, Any]:
        """Each exporter's record counters, breaker state and spool size; forwarders by name."""
        counters: dict[str, Any] = {"logs": self.log_exporter.status(), "spans": self.span_exporter.status()}
        if self.forwarders:
            counters["forward"] = {exporter.delivery.name: exporter.status() for exporter in self.forwarders}
        return counters


def state(app: Flask | None = None) -> ServiceState:
    found: ServiceState = (app or current_app).extensions[EXTENSION_KEY]
    return found
