"""Acceptance for fault tolerance: real DuckDB files, real processes, failures on purpose."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk._logs.export import LogRecordExportResult

from exporters import DuckDBLogRecordExporter
from exporters.breaker import BreakerState, CircuitBreaker
from exporters.spool import Spool
from exporters.store import TelemetryStore
from tests.exporters.fakes import FailingStore, FlakyStore
from tests.helpers import LockHolder, make_records, wait_until

T0 = 1_790_000_000_000_000_000


def stored_bodies(path: Path) -> list[str]:
    store = TelemetryStore(path)
    try:
        return [row[0] for row in store.cursor().execute("SELECT body FROM logs ORDER BY body").fetchall()]
    finally:
        store.close()


def batches(count: int, size: int, prefix: str = "r") -> list[list]:  # type: ignore[type-arg]
    out = []
    for b in range(count):
        records = make_records(size, start_ns=T0 + b * size * 1_000_000)
        for i, record in enumerate(records):
            record.log_record.body = f"{prefix}{b:03d}-{i:03d}"  # type: ignore[misc]
        out.append(records)
    return out


@pytest.fixture
def lock_holder(tmp_path: Path) -> Iterator[tuple[Path, LockHolder]]:
    path = tmp_path / "locked.duckdb"
    TelemetryStore(path).close()  # create it, with its schema
    with LockHolder(path) as holder:
        yield path, holder


def test_locked_database_spools_then_everything_arrives_exactly_once(
    lock_holder: tuple[Path, LockHolder],
) -> None:
    path, holder = lock_holder
    exporter = DuckDBLogRecordExporter(
        path, circuit_breaker_threshold=1, circuit_breaker_timeout=0.1, replay_interval_seconds=0.05
    )
    sent = batches(4, 25)
    for batch in sent[:3]:
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    assert exporter.status()["spooled"] == 75
    assert exporter.status()["exported"] == 0
    holder.release()
    assert wait_until(lambda: exporter.status()["replayed"] == 75)
    assert exporter.export(sent[3]) is LogRecordExportResult.SUCCESS
    assert exporter.status()["spool"]["files"] == 0
    exporter.shutdown()
    expected = sorted(r.log_record.body for batch in sent for r in batch)  # type: ignore[misc]
    assert stored_bodies(path) == expected  # every record, each once


def test_unwritable_database_file_spools_recovers_and_drains(tmp_path: Path) -> None:
    path = tmp_path / "readonly.duckdb"
    TelemetryStore(path).close()
    subprocess.run(["chattr", "+i", str(path)], check=True)  # immutable: not even root may write it
    try:
        exporter = DuckDBLogRecordExporter(
            path, circuit_breaker_threshold=2, circuit_breaker_timeout=0.1, replay_interval_seconds=0.05
        )
        sent = batches(3, 10)
        for batch in sent:
            assert exporter.export(batch) is LogRecordExportResult.SUCCESS
        assert exporter.status()["spooled"] == 30
        assert "Operation not permitted" in (exporter.store.last_error or "")
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert wait_until(lambda: exporter.status()["replayed"] == 30)
    exporter.shutdown()
    assert len(stored_bodies(path)) == 30


def test_disk_full_spools_counts_right_and_drains(tmp_path: Path) -> None:
    store = FailingStore(str(tmp_path / "full.duckdb"))
    store.failing = True
    exporter = DuckDBLogRecordExporter(
        store=store, circuit_breaker_threshold=100, max_retry_attempts=1, replay_interval_seconds=0.05
    )
    sent = batches(5, 20)
    for batch in sent:
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    status = exporter.status()
    # Only the first batch is retried: after it failed, each batch gets one attempt and is spooled.
    assert (status["failed"], status["spooled"], status["retried"], status["exported"]) == (100, 100, 1, 0)
    assert status["spool"]["records"] == 100
    store.failing = False
    assert wait_until(lambda: exporter.status()["replayed"] == 100)
    assert exporter.status()["spool"]["files"] == 0
    rows = store.cursor().execute("SELECT count(*), count(DISTINCT body) FROM logs").fetchone()
    assert rows == (100, 100)
    exporter.shutdown()
    store.close()


def test_after_a_failed_batch_the_next_ones_are_not_retried_in_the_export_thread(tmp_path: Path) -> None:
    store = FailingStore(str(tmp_path / "away.duckdb"))
    store.failing = True
    exporter = DuckDBLogRecordExporter(
        store=store, max_retry_attempts=3, retry_delay_seconds=0.01, circuit_breaker_threshold=100,
        replay_interval_seconds=3600,
    )  # fmt: skip
    first, second, third = batches(3, 10)
    assert exporter.export(first) is LogRecordExportResult.SUCCESS  # spooled
    assert store.calls == 4  # one attempt and three retries, while the store was thought healthy
    assert exporter.export(second) is LogRecordExportResult.SUCCESS
    assert store.calls == 5  # one attempt, then the spool: the replayer retries it, not this thread
    store.failing = False
    assert exporter.export(third) is LogRecordExportResult.SUCCESS
    assert exporter.status()["retried"] == 3
    exporter.shutdown()  # the final replay delivers what was spooled
    assert store.cursor().execute("SELECT count(DISTINCT body) FROM logs").fetchone() == (30,)
    store.close()


def test_one_export_retries_no_longer_than_the_export_timeout(tmp_path: Path) -> None:
    store = FailingStore(str(tmp_path / "slow.duckdb"))
    store.failing = True
    exporter = DuckDBLogRecordExporter(
        store=store, max_retry_attempts=100, retry_delay_seconds=0.2, export_timeout_seconds=0,
        circuit_breaker_threshold=100, replay_interval_seconds=3600,
    )  # fmt: skip
    assert exporter.export(batches(1, 5)[0]) is LogRecordExportResult.SUCCESS
    assert store.calls == 1 and exporter.status()["spooled"] == 5  # no time left for a retry
    exporter.shutdown()
    store.close()


def test_exiting_with_the_breaker_open_tries_the_spool_once_more(tmp_path: Path) -> None:
    store = FailingStore(str(tmp_path / "back.duckdb"))
    store.failing = True
    exporter = DuckDBLogRecordExporter(
        store=store, max_retry_attempts=0, circuit_breaker_threshold=1, circuit_breaker_timeout=3600,
        replay_interval_seconds=3600,
    )  # fmt: skip
    for batch in batches(3, 4):
        exporter.export(batch)
    assert exporter.delivery.breaker.state is BreakerState.OPEN
    store.failing = False  # back, but the breaker would not look for an hour
    exporter.shutdown()
    assert exporter.status()["spool"]["files"] == 0 and exporter.status()["replayed"] == 12
    assert store.cursor().execute("SELECT count(*) FROM logs").fetchone() == (12,)
    store.close()


def test_a_store_failing_70_percent_of_batches_loses_nothing(tmp_path: Path) -> None:
    store = FlakyStore(str(tmp_path / "flaky.duckdb"), failure_rate=0.7)
    exporter = DuckDBLogRecordExporter(
        store=store, max_retry_attempts=0, circuit_breaker_threshold=1000, replay_interval_seconds=0.02
    )
    sent = batches(40, 15)
    for batch in sent:
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    assert exporter.status()["failed"] > 0 and exporter.status()["spooled"] > 0
    assert wait_until(lambda: exporter.status()["spool"]["files"] == 0, timeout=30)
    exporter.shutdown()
    stored = [row[0] for row in store.cursor().execute("SELECT body FROM logs ORDER BY body").fetchall()]
    assert stored == sorted(r.log_record.body for batch in sent for r in batch)  # type: ignore[misc]
    store.close()


def test_breaker_opens_skips_the_store_then_a_half_open_trial_closes_it(tmp_path: Path) -> None:
    store = FailingStore(str(tmp_path / "breaker.duckdb"))
    store.failing = True
    exporter = DuckDBLogRecordExporter(
        store=store, circuit_breaker_threshold=3, circuit_breaker_timeout=0.5, max_retry_attempts=0,
        replay_interval_seconds=3600,  # no background replay: the test drives every step
    )  # fmt: skip
    sent = batches(8, 5)
    for batch in sent[:3]:
        exporter.export(batch)
    assert exporter.delivery.breaker.state is BreakerState.OPEN
    calls = store.calls
    for batch in sent[3:6]:
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    assert store.calls == calls  # open: straight to the spool, the store untouched
    assert exporter.status()["spooled"] == 30
    assert wait_until(lambda: exporter.delivery.breaker.state is BreakerState.HALF_OPEN, timeout=5)
    store.failing = False
    exporter.export(sent[6])  # the half-open trial
    assert store.calls == calls + 1
    assert exporter.delivery.breaker.state is BreakerState.CLOSED
    assert exporter.delivery.replay() == 30
    exporter.export(sent[7])
    exporter.shutdown()
    assert store.cursor().execute("SELECT count(DISTINCT body), count(*) FROM logs").fetchone() == (40, 40)
    store.close()


def test_breaker_state_machine() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, timeout=10, clock=lambda: now[0])
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    now[0] = 10.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    now[0] = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_corrupted_and_truncated_spool_files_are_quarantined(tmp_path: Path) -> None:
    store = FailingStore(str(tmp_path / "q.duckdb"))
    store.failing = True
    exporter = DuckDBLogRecordExporter(
        store=store, circuit_breaker_threshold=100, max_retry_attempts=0, replay_interval_seconds=3600
    )
    for batch in batches(4, 10):
        exporter.export(batch)
    spool = exporter.delivery.spool
    assert spool is not None
    files = spool.pending()
    assert len(files) == 4
    files[0].path.write_bytes(files[0].path.read_bytes()[: len(files[0].path.read_bytes()) // 2])  # truncated
    files[1].path.write_bytes(b"\x00\xff garbage \x13")  # undecodable
    document = json.loads(files[2].path.read_bytes())
    document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] = "abc"  # wrong id length
    files[2].path.write_bytes(json.dumps(document).encode())
    store.failing = False
    assert exporter.delivery.replay() == 10  # the one good file
    assert exporter.status()["quarantined"] == 30
    quarantined = sorted(p.name for p in (spool.directory / "quarantine").iterdir())
    assert quarantined == sorted(f.path.name for f in files[:3])
    assert spool.pending() == []
    exporter.shutdown()
    store.close()


def test_spool_full_drops_new_batches_and_counts_them_exactly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingStore(str(tmp_path / "f.duckdb"))
    store.failing = True
    exporter = DuckDBLogRecordExporter(
        store=store, fallback_max_files=3, circuit_breaker_threshold=100, max_retry_attempts=0,
        replay_interval_seconds=3600,
    )  # fmt: skip
    sizes = [10, 11, 12, 13, 14]
    results = [exporter.export(make_records(n, start_ns=T0 + n * 10**9)) for n in sizes]
    assert results[:3] == [LogRecordExportResult.SUCCESS] * 3
    assert results[3:] == [LogRecordExportResult.FAILURE] * 2
    status = exporter.status()
    assert (status["spooled"], status["dropped"]) == (33, 27)
    assert "spool full (3 files); dropped 13 new records" in caplog.text
    store.failing = False
    assert exporter.delivery.replay() == 33  # what was accepted is kept and delivered
    exporter.shutdown()
    store.close()


def test_spool_writes_are_atomic_and_leftovers_are_cleaned(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", max_files=10)
    assert spool.put(b"{}", 1)
    (spool.directory / ".0001-crash.otlp.json.tmp").write_bytes(b"half")
    reopened = Spool(tmp_path / "s", max_files=10)
    assert [p.name for p in reopened.directory.iterdir() if p.is_file()] == [spool.pending()[0].path.name]
    assert os.path.basename(str(reopened.pending()[0].path)).endswith("-n1.otlp.json")


def test_a_temporary_spool_file_is_removed_only_when_its_writer_is_gone(tmp_path: Path) -> None:
    """Processes share a spool folder (pipeline runs, the service draining them): a spool opened by
    one must not delete the file another is about to rename into place."""
    live = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        folder = tmp_path / "shared"
        folder.mkdir()
        names = {pid: f".{T0:020d}-{pid}-0-n3.otlp.json.tmp" for pid in (live.pid, dead.pid)}
        for name in names.values():
            (folder / name).write_bytes(b"half")
        Spool(folder, max_files=10)
        assert (folder / names[live.pid]).exists()
        assert not (folder / names[dead.pid]).exists()
    finally:
        live.kill()
        live.wait()


def test_concurrent_writers_never_take_the_spool_past_its_limit(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_files=3)
    start = threading.Barrier(16)
    accepted: list[bool] = []

    def put() -> None:
        start.wait()
        accepted.append(spool.put(b"{}", 1))

    writers = [threading.Thread(target=put) for _ in range(16)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert accepted.count(True) == 3 and spool.status()["files"] == 3
