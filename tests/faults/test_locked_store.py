"""The DuckDB file held by another process when the service starts: it starts degraded, says why,
spools what it acknowledges, and stores all of it once the file is let go, with no restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporters.store import TelemetryStore
from exporters.store.pipelines import PipelineRepository
from tests.conftest import start_server
from tests.faults.ledger import FAST_RECOVERY, Ledger, readiness, recovered
from tests.helpers import LockHolder


def _held_by(kind: str, data_dir: Path, tmp_path: Path) -> tuple[object, object]:
    """Start the holder; return it and how to let go of the file."""
    if kind == "python":
        holder = LockHolder(data_dir / "telemetry.duckdb")
        return holder, holder.release
    # Another `pipetrace serve` on the same data folder, with a spool of its own.
    other = start_server(data_dir, env={"FALLBACK_DIRECTORY": str(tmp_path / "other-spool")})
    return other, other.stop


def _interrupted_run(data_dir: Path) -> str:
    """A run a dead service left running: the service marks it failed when it first opens the file."""
    store = TelemetryStore(data_dir / "telemetry.duckdb")
    repository = PipelineRepository(store, data_dir / "secrets")
    pipeline = repository.create("left-behind", "simple", {}, {})
    repository.add_run(pipeline.id, "run-left-running", None)
    repository.update_run("run-left-running", status="running")
    store.close()
    return "run-left-running"


@pytest.mark.parametrize("holder_kind", ["python", "serve"])
def test_a_service_started_on_a_locked_file_spools_then_drains_it_without_a_restart(
    tmp_path: Path, holder_kind: str
) -> None:
    data_dir = tmp_path / "svc"
    run_id = _interrupted_run(data_dir)
    _, release = _held_by(holder_kind, data_dir, tmp_path)
    released = False
    server = start_server(data_dir, env=FAST_RECOVERY, wait_ready=False)
    ledger = Ledger("locked")
    try:
        status, body = readiness(server)
        assert status == 503 and body["status"] == "unavailable"
        assert "lock" in body["store"]["error"].lower()
        for _ in range(4):
            assert ledger.send(server, 50)  # acknowledged: durably spooled
        status, body = readiness(server)
        assert status == 503
        assert body["ingest"]["logs"]["spool"]["records"] >= 200
        assert body["ingest"]["logs"]["dropped"] == 0

        release()  # type: ignore[operator]
        released = True
        assert recovered(server), readiness(server)
        run = server.get(f"/api/runs/{run_id}").json()
        assert run["status"] == "failed" and run["error"]["type"] == "Interrupted"
        assert ledger.send(server, 50)  # stored directly now
        counters = readiness(server)[1]["ingest"]["logs"]
        assert counters["replayed"] == counters["spooled"] >= 200 and counters["dropped"] == 0
    finally:
        if not released:
            release()  # type: ignore[operator]
        assert server.stop() == 0
    log = server.log_path.read_text()
    assert "Traceback" not in log
    assert "started degraded" in log and "Could not set lock" in log and "is open again" in log
    ledger.assert_each_acknowledged_stored_once(data_dir / "telemetry.duckdb")
