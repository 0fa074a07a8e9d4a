from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from service.app import close_app, create_app
from service.state import state
from tests.exporters.fakes import FailingStore
from tests.helpers import make_records


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[Any]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


def test_ingest_counters_breaker_and_spool_are_metrics(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    app = create_app(data_dir=tmp_path, metric_readers=[reader])
    try:
        service = state(app)
        service.log_exporter.export(make_records(4, start_ns=10))
        # Swap in a store that fails, to see spooling and the breaker in the metrics.
        failing = FailingStore(str(tmp_path / "failing.duckdb"))
        failing.failing = True
        service.log_exporter.store = failing
        for start in (100, 200, 300, 400, 500, 600):
            service.log_exporter.export(make_records(2, start_ns=start))
        points = _points(reader)
        records = {
            (p.attributes["signal"], p.attributes["outcome"]): p.value
            for p in points["pipetrace.ingest.records"]
        }
        assert records[("logs", "exported")] >= 4
        assert records[("logs", "spooled")] == 12
        assert records[("logs", "failed")] == 10  # five batches failed before the breaker opened
        spool = {p.attributes["signal"]: p.value for p in points["pipetrace.ingest.spool.records"]}
        assert spool["logs"] == 12
        breaker = {
            (p.attributes["signal"], p.attributes["state"]): p.value
            for p in points["pipetrace.ingest.breaker.state"]
        }
        assert breaker[("logs", "open")] == 1 and breaker[("logs", "closed")] == 0
        assert breaker[("traces", "closed")] == 1
        failing.close()
    finally:
        close_app(app)
