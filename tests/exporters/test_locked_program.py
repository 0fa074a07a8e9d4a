"""Acceptance: a real program logging 500 records/s through the OTel SDK (its batch processor at its
defaults) into the ``duckdb`` exporter while another process holds the file for 20 s loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

from exporters.store import TelemetryStore
from tests.helpers import LockHolder

REPOSITORY = Path(__file__).resolve().parents[2]
RATE, SECONDS, LOCKED_SECONDS = 500, 24, 20


def test_a_program_loses_no_record_while_the_file_is_locked_for_20_seconds(tmp_path: Path) -> None:
    db = tmp_path / "locked.duckdb"
    TelemetryStore(db).close()
    env = {
        **os.environ,
        "PIPETRACE_DB": str(db),
        "FALLBACK_DIRECTORY": str(tmp_path / "spool"),
        "PYTHONPATH": str(REPOSITORY),
    }
    for name in [k for k in env if k.startswith("OTEL_BLRP_")]:
        del env[name]  # the SDK's own defaults: a 2,048-record queue
    holder = LockHolder(db)
    with (tmp_path / "writer.log").open("w") as log:
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.programs.steady_writer", str(RATE), str(SECONDS)],
            env=env, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPOSITORY,
        )  # fmt: skip
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        time.sleep(LOCKED_SECONDS)
        holder.release()
        output, _ = writer.communicate(timeout=120)
    assert writer.returncode == 0, (tmp_path / "writer.log").read_text()[-3000:]
    lines = output.strip().splitlines()
    assert lines[0] == f"emitted {RATE * SECONDS}"
    counters = orjson.loads(lines[-1])
    assert counters["dropped"] == 0 and counters["spooled"] > 0  # it did spool while the file was held
    store = TelemetryStore(db)
    try:
        query = "SELECT json_extract_string(attributes, '$.n') FROM logs"
        numbers = [int(row[0]) for row in store.cursor().execute(query).fetchall()]
    finally:
        store.close()
    missing = set(range(RATE * SECONDS)) - set(numbers)
    assert not missing, f"{len(missing)} records missing, e.g. {sorted(missing)[:10]}"
    assert len(numbers) == RATE * SECONDS  # and none stored twice
    assert "Queue full" not in (tmp_path / "writer.log").read_text()
