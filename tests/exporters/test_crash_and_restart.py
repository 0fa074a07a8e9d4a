"""Acceptance: kill -9 of a writing process, then restart and replay: every acknowledged record once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporters.store import TelemetryStore
from tests.helpers import LockHolder

BIN = Path(sys.executable).parent
REPOSITORY = Path(__file__).resolve().parents[2]


def _numbers(path: Path) -> list[int]:
    text = path.read_text() if path.exists() else ""
    lines = text.split("\n")[:-1]  # a line cut by the kill has no newline yet: not acknowledged
    return [int(line) for line in lines]


@pytest.mark.parametrize("store_state", ["failing", "healthy"])
def test_kill_9_loses_only_what_was_in_the_sdk_queue(
    tmp_path: Path, store_state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "crash.duckdb"
    TelemetryStore(db).close()
    env = {
        **os.environ,
        "PIPETRACE_DB": str(db),
        "CIRCUIT_BREAKER_THRESHOLD": "1",
        "CIRCUIT_BREAKER_TIMEOUT": "0.2",
        "PYTHONPATH": str(REPOSITORY),
    }
    holder = LockHolder(db) if store_state == "failing" else None
    ack, emitted = tmp_path / "acked.txt", tmp_path / "emitted.txt"
    with (tmp_path / "writer.log").open("w") as writer_log:
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.programs.numbered_writer", str(ack), str(emitted)],
            env=env, stdout=subprocess.PIPE, stderr=writer_log, text=True, cwd=REPOSITORY,
        )  # fmt: skip
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    time.sleep(2.0)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL

    if holder is not None:
        holder.release()
        replay = subprocess.run(
            [str(BIN / "pipetrace"), "spool", "replay"], env=env, capture_output=True, text=True, check=False
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert "duckdb-logs: replayed" in replay.stdout

    acknowledged = _numbers(ack)
    last_emitted = _numbers(emitted)[-1] if _numbers(emitted) else -1
    store = TelemetryStore(db)  # after SIGKILL DuckDB replays its WAL on open
    stored = [int(row[0]) for row in store.cursor().execute(
        "SELECT json_extract_string(attributes, '$.n') FROM logs").fetchall()]  # fmt: skip
    store.close()

    assert len(acknowledged) > 100, "the writer ran long enough to acknowledge batches"
    assert len(stored) == len(set(stored)), "nothing is stored twice"
    missing = set(acknowledged) - set(stored)
    assert not missing, f"acknowledged but not stored: {sorted(missing)[:10]}"
    lost = (last_emitted + 1) - len(stored)
    with capsys.disabled():
        print(
            f"\n[kill -9, store {store_state}] emitted {last_emitted + 1}, acknowledged {len(acknowledged)}, "
            f"stored {len(stored)}, lost in flight (the SDK's in-memory queue) {lost}"
        )
    assert 0 <= lost <= 64 + 200  # at most one export batch plus what the 50 ms schedule had queued
