"""A damaged DuckDB file: the service names the file and the cause, is never "ready" while it cannot
store, spools what it acknowledges, and stores it once the damaged file is set aside."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from exporters.records import log_table
from exporters.store import TelemetryStore
from tests.conftest import LiveServer, start_server
from tests.faults.ledger import FAST_RECOVERY, Ledger, readiness, recovered
from tests.helpers import make_records

# DuckDB's file layout: three 4 KiB headers, then blocks of 256 KiB, each with its own checksum.
HEADERS = 3 * 4096
BLOCK = 262_144
DAMAGED_HOURS_NS = 1_790_000_000_000_000_000 + 5 * 10**12 + 7


def _set_aside(database: Path) -> None:
    """What an operator does with a damaged file: move it (and its WAL) out of the way."""
    for path in (database, database.with_name(database.name + ".wal")):
        if path.exists():
            os.replace(path, path.with_name(path.name + ".damaged"))


def _assert_never_ready_while(server: LiveServer, ledger: Ledger, cause: str) -> None:
    for _ in range(3):
        assert ledger.send(server, 40)  # acknowledged: spooled
        status, body = readiness(server)
        assert status == 503 and body["status"] == "unavailable", body
        assert cause in body["store"]["error"]
        assert "Current transaction is aborted" not in body["store"]["error"]


def test_a_file_that_is_not_a_database_is_named_with_its_cause_and_never_ready(tmp_path: Path) -> None:
    data_dir = tmp_path / "svc"
    database = data_dir / "telemetry.duckdb"
    data_dir.mkdir()
    database.write_bytes(b"\x00not a duckdb file" * 10_000)
    server = start_server(data_dir, env=FAST_RECOVERY, wait_ready=False)
    ledger = Ledger("corrupt-file")
    try:
        _assert_never_ready_while(server, ledger, "not a valid DuckDB database file")
        assert str(database) in readiness(server)[1]["store"]["error"]
        _set_aside(database)
        assert recovered(server), readiness(server)
    finally:
        assert server.stop() == 0
    log = server.log_path.read_text()
    assert f"telemetry store {database} cannot be opened" in log
    assert "not a valid DuckDB database file" in log and "Traceback" not in log
    ledger.assert_each_acknowledged_stored_once(database)


def _damage_a_block_inserts_read(database: Path) -> None:
    """Overwrite, in a copy of a real store, one block after another until the file still opens but
    an insert reads the damaged block (its checksum fails); keep that damage."""
    pristine = database.with_name("pristine.duckdb")
    shutil.copy(database, pristine)
    for offset in range(HEADERS, database.stat().st_size, BLOCK):
        shutil.copy(pristine, database)
        with database.open("r+b") as handle:
            handle.seek(offset + 100)
            handle.write(b"\xff" * 64)
        store = TelemetryStore(database)
        try:
            if store.last_error is not None:
                continue  # the catalog itself: the file does not even open
            try:
                store.insert_logs(log_table(make_records(10, start_ns=DAMAGED_HOURS_NS)))
            except Exception as exc:
                if "Corrupt database file" in str(exc):
                    return
        finally:
            store.close()
    raise AssertionError("no block of the file is read by an insert")


def test_a_corrupt_block_is_reported_as_itself_and_the_file_reopened(tmp_path: Path) -> None:
    data_dir = tmp_path / "svc"
    database = data_dir / "telemetry.duckdb"
    store = TelemetryStore(database)
    for batch in range(20):
        store.insert_logs(log_table(make_records(2000, start_ns=1_790_000_000_000_000_000 + batch * 10**12)))
    store.cursor().execute("CHECKPOINT")
    store.close()
    _damage_a_block_inserts_read(database)

    server = start_server(data_dir, env=FAST_RECOVERY, wait_ready=False)
    # Records of the damaged hours: storing them reads the damaged block.
    ledger = Ledger("corrupt-block", start_ns=DAMAGED_HOURS_NS)
    try:
        _assert_never_ready_while(server, ledger, "Corrupt database file")
        _set_aside(database)  # the service holds the old file open; it reopens by name after a failure
        assert recovered(server), readiness(server)
    finally:
        assert server.stop() == 0
    log = server.log_path.read_text()
    assert "Corrupt database file" in log and "failed; reopening it" in log
    assert "Current transaction is aborted" not in log
    ledger.assert_each_acknowledged_stored_once(database)
