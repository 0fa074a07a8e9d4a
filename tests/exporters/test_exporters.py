from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from exporters import DuckDBLogRecordExporter, DuckDBSpanExporter, TelemetryStore
from exporters.store.queries import LogQueries
from tests.helpers import make_record, make_records


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TelemetryStore]:
    opened = TelemetryStore(tmp_path / "e.duckdb")
    yield opened
    opened.close()


def _sdk(store: TelemetryStore) -> tuple[logging.Logger, TracerProvider, LoggerProvider, LoggingHandler]:
    resource = Resource.create({"service.name": "exporter-test", "deployment.environment": "test"})
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(DuckDBLogRecordExporter(store=store)))
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(store=store)))
    logger = logging.getLogger("exporter.test")
    logger.setLevel(logging.DEBUG)
    handler = LoggingHandler(logger_provider=logger_provider)
    logger.addHandler(handler)
    return logger, tracer_provider, logger_provider, handler


def test_records_from_the_sdk_keep_every_field(store: TelemetryStore) -> None:
    logger, tracer_provider, logger_provider, handler = _sdk(store)
    try:
        with tracer_provider.get_tracer("t", "2.0").start_as_current_span("work") as span:
            span.set_attribute("rows", 12)
            span.add_event("checkpoint", {"at": 3})
            logger.warning(
                "disk at %d%%", 91, extra={"pipeline.id": "p1", "nested": {"a": [1, 2]}, "ok": True}
            )
            try:
                raise ValueError("bad row")
            except ValueError:
                logger.exception("load failed")
            span.set_status(Status(StatusCode.ERROR, "load failed"))
        context = span.get_span_context()
    finally:
        logger.removeHandler(handler)
        tracer_provider.shutdown()
        logger_provider.shutdown()

    trace_id = format(context.trace_id, "032x")
    logs, spans, truncated = LogQueries(store).correlation(trace_id)
    assert not truncated
    assert [log["body"] for log in logs] == ["disk at 91%", "load failed"]
    warning, error = logs
    assert warning["severity_text"] == "WARN" and warning["severity_number"] == 13
    assert warning["span_id"] == format(context.span_id, "016x")
    assert warning["pipeline_id"] == "p1"
    numbers = {"arrayValue": {"values": [{"intValue": "1"}, {"intValue": "2"}]}}
    assert warning["attributes"]["nested"] == {"kvlistValue": {"values": [{"key": "a", "value": numbers}]}}
    assert warning["attributes"]["ok"] == {"boolValue": True}
    assert warning["scope"]["name"] == "exporter.test"
    assert warning["service_name"] == "exporter-test"
    assert warning["resource"]["deployment.environment"] == "test"
    assert warning["timestamp"].endswith("Z") and len(warning["timestamp"]) == len(
        "2026-01-01T00:00:00.000000000Z"
    )
    assert error["severity_text"] == "ERROR"
    assert error["attributes"]["exception.type"] == "ValueError"
    assert "bad row" in error["attributes"]["exception.stacktrace"]
    (stored_span,) = spans
    assert stored_span["name"] == "work"
    assert stored_span["status"] == {"code": "ERROR", "message": "load failed"}
    assert stored_span["attributes"] == {"rows": {"intValue": "12"}}
    assert stored_span["events"][0]["name"] == "checkpoint"
    assert stored_span["events"][0]["attributes"] == {"at": {"intValue": "3"}}
    assert stored_span["duration_ms"] > 0


def test_exporting_the_same_batch_twice_stores_it_once(store: TelemetryStore) -> None:
    exporter = DuckDBLogRecordExporter(store=store)
    batch = make_records(200, start_ns=1_750_000_000_000_000_000)
    assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    assert store.cursor().execute("SELECT count(*) FROM logs").fetchone() == (200,)
    counters = exporter.counters.snapshot()
    assert counters["exported"] == 200 and counters["duplicates"] == 200


def test_spans_exported_twice_are_stored_once(store: TelemetryStore) -> None:
    exporter = DuckDBSpanExporter(store=store)
    provider = TracerProvider()
    finished = []
    for name in ("a", "b", "c"):
        with provider.get_tracer("t").start_as_current_span(name) as span:
            pass
        finished.append(span)
    assert exporter.export(finished) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    assert exporter.export(finished) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    assert store.cursor().execute("SELECT count(*) FROM spans").fetchone() == (3,)


def test_structured_bodies_are_stored_as_json(store: TelemetryStore) -> None:
    record = make_record("x")
    record.log_record.body = {"event": "loaded", "rows": 3}  # type: ignore[misc]
    DuckDBLogRecordExporter(store=store).export([record])
    assert store.cursor().execute("SELECT body FROM logs").fetchone() == ('{"event":"loaded","rows":3}',)


def test_pipeline_context_is_taken_from_the_resource_when_records_lack_it(store: TelemetryStore) -> None:
    resource = Resource.create(
        {"service.name": "run", "pipeline.id": "from-resource", "pipeline.run_id": "r9"}
    )
    DuckDBLogRecordExporter(store=store).export([make_record("x", resource=resource)])
    assert store.cursor().execute("SELECT pipeline_id, run_id, stage FROM logs").fetchone() == (
        "from-resource",
        "r9",
        None,
    )


def test_a_failed_write_is_spooled_and_counted(
    store: TelemetryStore, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = DuckDBLogRecordExporter(store=store, max_retry_attempts=2)
    connection = store._connection
    assert connection is not None
    connection.close()  # every write now fails
    with caplog.at_level(logging.WARNING, logger="exporters.resilience"):
        assert exporter.export(make_records(3, start_ns=1)) is LogRecordExportResult.SUCCESS
    status = exporter.status()
    assert (status["failed"], status["retried"], status["spooled"], status["exported"]) == (3, 2, 3, 0)
    assert status["spool"]["files"] == 1 and status["spool"]["records"] == 3
    assert "could not deliver 3 records" in caplog.text
    exporter.shutdown()


def test_exporter_built_without_arguments_reads_pipetrace_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.duckdb"
    monkeypatch.setenv("PIPETRACE_DB", str(path))
    logs, spans = DuckDBLogRecordExporter(), DuckDBSpanExporter()
    assert logs.store is spans.store  # one connection for both signals
    assert logs.store.path == str(path)
    logs.export(make_records(2, start_ns=5))
    logs.shutdown()
    spans.shutdown()
    assert logs.store.closed
    reopened = TelemetryStore(path)
    assert reopened.cursor().execute("SELECT count(*) FROM logs").fetchone() == (2,)
    reopened.close()
