"""Acceptance: ``pipetrace backup DEST`` copies every acknowledged record, with the service running or
after it was killed, and the copy restores as a working store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs.export import LogRecordExportResult

from tests.conftest import LiveServer, start_server
from tests.helpers import make_records

BIN = Path(sys.executable).parent
START = 1_790_000_000_000_000_000


def send_acknowledged(server: LiveServer, batches: int, size: int) -> set[str]:
    """Send numbered records with the official OTLP/HTTP exporter; return the bodies the service acked."""
    exporter = OTLPLogExporter(endpoint=f"{server.url}/v1/logs", timeout=10)
    acked: set[str] = set()
    for b in range(batches):
        batch = make_records(size, start_ns=START + b * size * 1_000_000, attributes={"pipeline.id": "bk"})
        for i, record in enumerate(batch):
            record.log_record.body = f"acked {b}-{i}"  # type: ignore[misc]
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS
        acked |= {f"acked {b}-{i}" for i in range(size)}
    exporter.shutdown()
    return acked


def backup(data_dir: Path, destination: Path, service_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPETRACE_DATA_DIR": str(data_dir), "PIPETRACE_URL": service_url}
    return subprocess.run(
        [str(BIN / "pipetrace"), "backup", str(destination)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def bodies_in(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [row[0] for row in con.execute("SELECT body FROM logs WHERE pipeline_id = 'bk'").fetchall()]


def test_a_backup_after_kill_9_holds_every_acknowledged_record_and_restores(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc")
    acked = send_acknowledged(server, batches=20, size=50)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    # What a file copy would miss: acknowledged records that so far live only in the write-ahead log.
    assert (tmp_path / "svc" / "telemetry.duckdb.wal").exists()

    destination = tmp_path / "backup.duckdb"
    result = backup(tmp_path / "svc", destination, server.url)
    assert result.returncode == 0, result.stderr
    assert f"no service at {server.url}" in result.stdout and str(destination) in result.stdout
    assert not (tmp_path / "backup.duckdb.wal").exists()  # the copy is whole in one file
    again = backup(tmp_path / "svc", destination, server.url)
    assert again.returncode == 2 and "exists already" in again.stderr  # never overwritten

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(destination, restored / "telemetry.duckdb")
    server = start_server(restored)
    try:
        logs = server.get("/api/logs/pipeline/bk?limit=1000").json()["logs"]
        stored = [log["body"] for log in logs]
        assert len(stored) == len(set(stored)) == len(acked)
        assert set(stored) == acked
    finally:
        server.stop()


def test_a_backup_while_the_service_runs_is_taken_by_the_service(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc")
    try:
        acked = send_acknowledged(server, batches=4, size=25)
        destination = tmp_path / "live-backup.duckdb"
        result = backup(tmp_path / "svc", destination, server.url)
        assert result.returncode == 0, result.stderr
        assert "backup of the running service's store written to" in result.stdout
        assert set(bodies_in(destination)) == acked  # readable while the service still holds its file
        assert list((tmp_path / "svc" / "backups").iterdir()) == []  # moved, not left behind
        assert server.post("/api/backup", json={"into": "/etc"}).status_code == 400
        taken = server.post("/api/backup", json={})
        assert taken.status_code == 201
        assert set(bodies_in(Path(taken.json()["path"]))) == acked
    finally:
        server.stop()
