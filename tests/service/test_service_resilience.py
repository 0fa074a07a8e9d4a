"""Acceptance: the service and a pipeline-side OTLP exporter keep everything through outages and restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk._logs.export import LogRecordExportResult

from exporters import DuckDBLogRecordExporter, TelemetryStore
from exporters.otlp_exporter import ResilientOTLPLogExporter
from tests.conftest import free_port, start_server
from tests.exporters.fakes import FailingStore
from tests.helpers import LockHolder, make_records, wait_until

TRACEPARENT = "00-{trace}-00f067aa0ba902b7-01"


def test_pipeline_side_otlp_exporter_spools_while_the_service_is_down(tmp_path: Path) -> None:
    port = free_port()
    exporter = ResilientOTLPLogExporter(
        endpoint=f"http://127.0.0.1:{port}/v1/logs",
        timeout=1,
        circuit_breaker_threshold=1,
        circuit_breaker_timeout=0.2,
        replay_interval_seconds=0.1,
    )
    start = 1_790_000_000_000_000_000
    sent = [
        make_records(10, start_ns=start + b * 10**10, attributes={"pipeline.id": "run"}) for b in range(4)
    ]
    for b, batch in enumerate(sent):
        for i, record in enumerate(batch):
            record.log_record.body = f"b{b}-{i}"  # type: ignore[misc]
    for batch in sent[:3]:
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS  # accepted: spooled
    assert exporter.status()["spooled"] == 30 and exporter.status()["exported"] == 0

    server = start_server(tmp_path / "svc", port=port)
    try:
        assert wait_until(lambda: exporter.status()["replayed"] == 30, timeout=20)
        assert exporter.export(sent[3]) is LogRecordExportResult.SUCCESS  # delivered directly now
        exporter.shutdown()
        logs = server.get("/api/logs/pipeline/run?limit=1000").json()["logs"]
        assert sorted(log["body"] for log in logs) == sorted(r.log_record.body for b in sent for r in b)  # type: ignore[misc]
    finally:
        server.stop()


def test_start_up_replays_the_spool_before_it_is_ready(tmp_path: Path) -> None:
    data_dir = tmp_path / "svc"
    db = data_dir / "telemetry.duckdb"
    TelemetryStore(db).close()
    holder = LockHolder(db)
    exporter = DuckDBLogRecordExporter(db, circuit_breaker_threshold=1, replay_interval_seconds=3600)
    exporter.export(make_records(25, start_ns=1_790_000_000_000_000_000, attributes={"pipeline.id": "early"}))
    assert exporter.status()["spool"]["records"] == 25
    exporter.shutdown()  # its last replay fails too: the file is still held
    holder.release()

    server = start_server(data_dir)  # returns at the first /readyz that says ready
    try:
        ready = server.get("/readyz").json()
        assert ready["status"] == "ready"
        assert ready["ingest"]["logs"]["spool"]["files"] == 0
        assert ready["ingest"]["logs"]["replayed"] == 25
        assert len(server.get("/api/logs/pipeline/early").json()["logs"]) == 25
    finally:
        server.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_flushes_what_is_queued(tmp_path: Path, signum: int) -> None:
    server = start_server(tmp_path / "svc")
    trace = f"{signum:032x}"
    # The request's log line waits in the batch processor (1 s schedule) when the signal arrives.
    assert server.get("/api/logs/stats", headers={"traceparent": TRACEPARENT.format(trace=trace)}).ok
    server.process.send_signal(signum)
    assert server.process.wait(timeout=30) == 0
    store = TelemetryStore(tmp_path / "svc" / "telemetry.duckdb")
    try:
        rows = store.cursor().execute("SELECT body FROM logs WHERE trace_id = ?", [trace]).fetchall()
        spans = store.cursor().execute("SELECT name FROM spans WHERE trace_id = ?", [trace]).fetchall()
    finally:
        store.close()
    assert len(rows) == 1 and rows[0][0].startswith("GET /api/logs/stats 200")
    assert spans == [("GET /api/logs/stats",)]


def test_spool_status_command_reports_what_is_spooled(tmp_path: Path) -> None:
    store = FailingStore(str(tmp_path / "cli.duckdb"))
    store.failing = True
    exporter = DuckDBLogRecordExporter(store=store, replay_interval_seconds=3600)
    exporter.export(make_records(7, start_ns=5))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pipetrace"), "spool", "status", "--json"],
        capture_output=True, text=True, check=True, env=os.environ,
    )  # fmt: skip
    status = json.loads(result.stdout)
    assert status["spools"]["duckdb-logs"]["files"] == 1
    assert status["spools"]["duckdb-logs"]["records"] == 7
    table = subprocess.run(
        [str(Path(sys.executable).parent / "pipetrace"), "spool", "status"],
        capture_output=True, text=True, check=True, env=os.environ,
    )  # fmt: skip
    assert "duckdb-logs" in table.stdout and "7 records" in table.stdout
    store.failing = False
    exporter.shutdown()  # its last replay delivers the batch
    assert store.cursor().execute("SELECT count(*) FROM logs").fetchone() == (7,)
    store.close()


def test_spool_replay_command_counts_what_its_background_replayer_delivered_too(tmp_path: Path) -> None:
    store = FailingStore(str(tmp_path / "replay.duckdb"))
    store.failing = True
    exporter = DuckDBLogRecordExporter(store=store, replay_interval_seconds=3600)
    for batch in range(20):
        exporter.export(make_records(50, start_ns=1_790_000_000_000_000_000 + batch * 10**9))
    store.close()  # this process lets go of the file; its own replays fail from now on
    assert exporter.status()["spool"]["records"] == 1000
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pipetrace"), "spool", "replay"],
        capture_output=True, text=True, check=True, env={**os.environ, "PIPETRACE_DB": store.path},
    )  # fmt: skip
    assert "duckdb-logs: replayed 1000 records, 0 quarantined, 0 files left" in result.stdout
    check = TelemetryStore(store.path)
    assert check.cursor().execute("SELECT count(*) FROM logs").fetchone() == (1000,)
    check.close()
