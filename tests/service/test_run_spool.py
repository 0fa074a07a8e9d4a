"""What a pipeline run spooled and never sent reaches the store through the service itself."""

from __future__ import annotations

from pathlib import Path

import duckdb
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

from exporters.log_exporter import encode_log_batch
from exporters.otlp_exporter import ResilientOTLPLogExporter, ResilientOTLPSpanExporter
from exporters.spool import QUARANTINE, Spool
from service.app import close_app, create_app
from service.runner import RUN_SPOOL
from tests.conftest import free_port, start_server
from tests.helpers import RESOURCE, make_records, wait_until

START = 1_790_000_000_000_000_000
TRACE = 0x5B001ED
SECRET = "AKIAIOSFODNN7EXAMPLE"


def _span(span_id: int) -> ReadableSpan:
    context = SpanContext(TRACE, span_id, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name=f"stage {span_id}", context=context, resource=RESOURCE,
        attributes={"pipeline.id": "orphan"}, start_time=START + span_id, end_time=START + span_id + 10**6,
    )  # fmt: skip


def _stored(data_dir: Path, sql: str) -> int:
    with duckdb.connect(str(data_dir / "telemetry.duckdb"), read_only=True) as con:
        row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_a_runs_spool_is_stored_once_when_no_other_run_follows(tmp_path: Path) -> None:
    """A run whose service was down ends with its telemetry spooled (the runs' own OTLP exporters, to
    a closed loopback port); the service, started later, stores it, redacted, and removes the files;
    a second start stores nothing twice."""
    data_dir = tmp_path / "svc"
    spool_dir = data_dir.resolve() / RUN_SPOOL
    port = free_port()  # nothing listens there
    settings = {
        "timeout": 1, "max_retry_attempts": 0, "circuit_breaker_threshold": 1,
        "fallback_directory": spool_dir, "replay_interval_seconds": 3600,
    }  # fmt: skip
    logs = ResilientOTLPLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs", **settings)
    spans = ResilientOTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", **settings)
    for b in range(3):
        batch = make_records(
            10, start_ns=START + b * 10**9, trace_id=TRACE, attributes={"pipeline.id": "orphan"}
        )
        batch[0].log_record.body = f"run used {SECRET}"  # type: ignore[misc]
        assert logs.export(batch) is LogRecordExportResult.SUCCESS  # accepted: spooled
    assert spans.export([_span(1), _span(2)]) is SpanExportResult.SUCCESS
    logs.shutdown()  # the run ends; its last replay fails too
    spans.shutdown()
    assert len(list((spool_dir / "otlp-logs").glob("*.otlp.json"))) == 3
    assert len(list((spool_dir / "otlp-traces").glob("*.otlp.json"))) == 1

    for start in range(2):
        server = start_server(data_dir)
        try:
            assert wait_until(lambda: not list(spool_dir.glob("*/*.otlp.json")), timeout=20)
            correlated = server.get(f"/api/logs/correlation/{TRACE:032x}").json()
            assert len(correlated["logs"]) == 30, f"start {start}"
            assert sorted(span["name"] for span in correlated["spans"]) == ["stage 1", "stage 2"]
        finally:
            server.stop()
    assert _stored(data_dir, "SELECT count(*) FROM logs WHERE pipeline_id = 'orphan'") == 30
    assert _stored(data_dir, f"SELECT count(*) FROM logs WHERE contains(body, '{SECRET}')") == 0
    assert _stored(data_dir, "SELECT count(*) FROM logs WHERE body LIKE 'run used %'") == 3


def test_an_unreadable_spool_file_is_set_aside_and_the_rest_stored(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    spool = Spool(data_dir.resolve() / RUN_SPOOL / "otlp-logs", max_files=10)
    assert spool.put(b'{"resourceLogs": [', 5)  # cut short: not OTLP/JSON
    records = make_records(4, start_ns=START, attributes={"pipeline.id": "kept"})
    assert spool.put(encode_log_batch(records), len(records))

    app = create_app(data_dir=data_dir)
    try:
        assert wait_until(lambda: not spool.pending(), timeout=10)
        assert len(list((spool.directory / QUARANTINE).iterdir())) == 1
        stored = app.test_client().get("/api/logs/pipeline/kept").get_json()["logs"]
        assert sorted(log["body"] for log in stored) == [f"record {i}" for i in range(4)]
    finally:
        close_app(app)
