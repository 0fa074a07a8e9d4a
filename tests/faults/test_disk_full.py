"""A full disk, for real (a tmpfs filled up): under the store, the service spools what it
acknowledges, says so, and stores it once space is back; under the spool, it refuses what it cannot
keep (503) and says the true cause; the spool never holds more files than its limit."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tests.conftest import LiveServer, start_server
from tests.faults.ledger import FAST_RECOVERY, Ledger, readiness, recovered
from tests.faults.tmpfs import tmpfs
from tests.helpers import LockHolder, wait_until


def test_a_full_disk_under_the_store_spools_and_recovers_when_space_is_freed(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "24m") as disk:
        data_dir = disk.mountpoint / "svc"
        database = data_dir / "telemetry.duckdb"
        server = start_server(data_dir, env=FAST_RECOVERY, command=disk.enter)
        ledger = Ledger("store-disk-full")
        try:
            assert ledger.send(server, 100)  # stored directly
            filler = disk.fill()
            for _ in range(5):
                assert ledger.send(server, 100)  # acknowledged: spooled on the other disk
            status, body = readiness(server)
            assert status == 503 and "No space left on device" in body["store"]["error"], json.dumps(body)
            logs = body["ingest"]["logs"]
            assert logs["spool"]["records"] >= 500 and logs["failed"] >= 100 and logs["dropped"] == 0

            filler.unlink()
            assert recovered(server), readiness(server)
            assert ledger.send(server, 100)
        finally:
            assert server.stop() == 0
        log = server.log_path.read_text()
        assert "No space left on device" in log and "Traceback" not in log
        ledger.assert_each_acknowledged_stored_once(disk.copy_out(database, tmp_path / "copy"))


def test_a_full_disk_under_the_spool_refuses_new_records_and_says_why(tmp_path: Path) -> None:
    data_dir = tmp_path / "svc"
    database = data_dir / "telemetry.duckdb"
    with tmpfs(tmp_path / "spool-disk", "1m") as disk:
        env = {**FAST_RECOVERY, "FALLBACK_DIRECTORY": str(disk.mountpoint / "spool")}
        start_server(data_dir).stop()  # the file exists, so that another process can hold it
        holder = LockHolder(database)
        server = start_server(data_dir, env=env, command=disk.enter, wait_ready=False)
        ledger = Ledger("spool-disk-full")
        try:
            # The store is away and the spool's disk fills up: a request that cannot be kept is refused.
            for _ in range(60):
                if not ledger.send(server, 200, timeout=1):
                    break
            assert ledger.refused and len(ledger.acknowledged) >= 200
            status, body = readiness(server)
            assert status == 503
            assert "No space left on device" in body["store"]["error"], body
            assert "spool full" not in body["store"]["error"]
            assert body["ingest"]["logs"]["dropped"] >= 200

            holder.release()  # the store comes back: the spool drains, and frees its disk
            assert recovered(server), readiness(server)
            assert ledger.send(server, 100)
        finally:
            if holder.process.poll() is None:
                holder.release()
            assert server.stop() == 0
    log = server.log_path.read_text()
    assert "cannot write to the spool" in log and "No space left on device" in log
    assert "spool full" not in log
    ledger.assert_each_acknowledged_stored_once(database)


def _send_six(ledger: Ledger, server: LiveServer) -> None:
    for _ in range(6):
        ledger.send(server, 20, timeout=1)


def test_the_spool_never_holds_more_files_than_its_limit(tmp_path: Path) -> None:
    data_dir = tmp_path / "svc"
    database = data_dir / "telemetry.duckdb"
    spool = tmp_path / "spool" / "duckdb-logs"
    env = {**FAST_RECOVERY, "FALLBACK_DIRECTORY": str(spool.parent), "FALLBACK_MAX_FILES": "5"}
    start_server(data_dir).stop()
    holder = LockHolder(database)
    server = start_server(data_dir, env=env, wait_ready=False)
    ledgers = [Ledger(f"limit-{n}") for n in range(4)]
    most = 0
    sending = True

    def watch() -> None:
        nonlocal most
        while sending:
            most = max(most, len([p for p in spool.glob("*.otlp.json")]) if spool.is_dir() else 0)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        senders = [threading.Thread(target=_send_six, args=(ledger, server)) for ledger in ledgers]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        sending = False
        watcher.join()
        assert most == 5
        status, body = readiness(server)
        assert status == 503 and "spool full (5 files)" in body["store"]["error"]
        assert all(ledger.refused for ledger in ledgers)
        holder.release()
        assert wait_until(lambda: readiness(server)[0] == 200, timeout=30), readiness(server)
    finally:
        sending = False
        if holder.process.poll() is None:
            holder.release()
        assert server.stop() == 0
    assert "spool full (5 files)" in server.log_path.read_text()
    assert sum(len(ledger.acknowledged) for ledger in ledgers) >= 20
    for ledger in ledgers:
        ledger.assert_each_acknowledged_stored_once(database, some=False)
