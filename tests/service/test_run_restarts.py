"""Acceptance: a pipeline run and the service stopping (SIGTERM) or dying (kill -9) under it.

One model (service/runner.py): runs are detached processes that finish on their own; the service
that starts next adopts their outcome, or watches them again while they live, and can cancel them.
Every status, row count and error is the run's own, and all of its telemetry arrives, exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

from tests.conftest import ALLOW_USER_CODE, LiveServer, start_server
from tests.service.pipeline_helpers import create, start, wait_for_logs, wait_for_run

TICKS = 20
TICKING_CODE = textwrap.dedent(
    f"""
    import logging
    import time
    import dlt

    @dlt.resource(name="ticks")
    def ticks():
        for i in range({TICKS}):
            logging.getLogger("user.code").info("tick %d", i)
            yield {{"i": i}}
            time.sleep(0.4)

    def data_source():
        return ticks
    """
)
# A run that hears the cancel and finishes anyway: from its first row on, SIGTERM only logs a line.
STUBBORN_CODE = textwrap.dedent(
    """
    import logging
    import signal
    import time
    import dlt

    def refuse(signum, frame):
        logging.getLogger("user.code").warning("asked to stop; finishing anyway")

    @dlt.resource(name="ticks")
    def ticks():
        signal.signal(signal.SIGTERM, refuse)
        for i in range(10):
            logging.getLogger("user.code").info("stubborn %d", i)
            yield {"i": i}
            time.sleep(0.3)

    def data_source():
        return ticks
    """
)
ENV = {**ALLOW_USER_CODE, "PIPETRACE_REPLAY_INTERVAL": "0.5"}


def wait_for(predicate: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def status_of(server: LiveServer, run_id: str) -> str:
    status: str = server.get(f"/api/runs/{run_id}").json()["status"]
    return status


def ticks_logged(server: LiveServer, pipeline_id: str) -> list[str]:
    logs = server.get(f"/api/logs/search?q=tick&pipeline_id={pipeline_id}&limit=1000").json()["logs"]
    return sorted(log["body"] for log in logs if log["body"].startswith("tick "))


def assert_complete_telemetry(server: LiveServer, pipeline_id: str, run_id: str) -> None:
    expected = sorted(f"tick {i}" for i in range(TICKS))
    wait_for(lambda: len(ticks_logged(server, pipeline_id)) >= TICKS, "every tick stored", timeout=60)
    assert ticks_logged(server, pipeline_id) == expected  # each once
    logs = server.get(f"/api/logs/pipeline/{pipeline_id}?run_id={run_id}&limit=1000").json()["logs"]
    scopes = {log["scope"]["name"] for log in logs if log["scope"]}
    # The run's exporter retrying against a service that was away is not something the run did.
    assert not {scope for scope in scopes if scope.startswith(("exporters", "opentelemetry"))}, scopes
    assert not [log for log in logs if "could not deliver" in log["body"]]


def run_folder(server: LiveServer, run_id: str) -> Path:
    return server.data_dir / "runs" / run_id


def test_sigterm_of_the_service_leaves_the_run_to_finish_and_the_next_start_adopts_it(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "svc", env=ENV)
    pipeline = create(server, "dlt_code", {"code": TICKING_CODE})
    run_id = start(server, pipeline["id"])["run_id"]
    wait_for(lambda: len(ticks_logged(server, pipeline["id"])) >= 2, "two ticks stored")
    assert server.stop() == 0  # SIGTERM: the service stops at once, the run goes on
    result = run_folder(server, run_id) / "result.json"
    wait_for(result.exists, "the run finished while the service was down")
    assert json.loads(result.read_text())["status"] == "succeeded"

    restarted = start_server(tmp_path / "svc", env=ENV)
    try:
        wait_for(lambda: status_of(restarted, run_id) != "running", "the outcome adopted")
        run = restarted.get(f"/api/runs/{run_id}").json()
        assert run["status"] == "succeeded", run
        assert run["rows_loaded"] == {"ticks": TICKS} and run["error"] is None and run["exit_code"] == 0
        assert_complete_telemetry(restarted, pipeline["id"], run_id)
    finally:
        restarted.stop()


def test_after_kill_9_of_the_service_a_restart_watches_the_live_run_to_its_true_end(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc", env=ENV)
    pipeline = create(server, "dlt_code", {"code": TICKING_CODE})
    run_id = start(server, pipeline["id"])["run_id"]
    wait_for(lambda: len(ticks_logged(server, pipeline["id"])) >= 2, "two ticks stored")
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()

    restarted = start_server(tmp_path / "svc", env=ENV)
    try:
        assert not (run_folder(restarted, run_id) / "result.json").exists()  # still running
        assert status_of(restarted, run_id) == "running"
        run = wait_for_run(restarted, run_id)
        assert run["status"] == "succeeded", run
        assert run["rows_loaded"] == {"ticks": TICKS} and run["error"] is None
        assert_complete_telemetry(restarted, pipeline["id"], run_id)
    finally:
        restarted.stop()


def test_a_restarted_service_can_still_cancel_a_run_it_adopted(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc", env=ENV)
    pipeline = create(server, "dlt_code", {"code": TICKING_CODE.replace(f"range({TICKS})", "range(600)")})
    run_id = start(server, pipeline["id"])["run_id"]
    wait_for(lambda: len(ticks_logged(server, pipeline["id"])) >= 1, "a tick stored")
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()

    restarted = start_server(tmp_path / "svc", env=ENV)
    try:
        response = restarted.post(f"/api/runs/{run_id}/cancel", json={})
        assert response.status_code == 202, response.text
        run = wait_for_run(restarted, run_id)
        assert run["status"] == "cancelled", run
        assert run["error"]["type"] == "Cancelled"
    finally:
        restarted.stop()


def test_a_cancelled_run_that_finishes_anyway_is_reported_as_it_ended(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc", env=ENV)
    try:
        pipeline = create(server, "dlt_code", {"code": STUBBORN_CODE})
        run_id = start(server, pipeline["id"])["run_id"]
        search = f"/api/logs/search?q=stubborn&pipeline_id={pipeline['id']}"
        wait_for_logs(server, search, lambda body: body["logs"])
        assert server.post(f"/api/runs/{run_id}/cancel", json={}).status_code == 202
        run = wait_for_run(server, run_id)
        assert run["status"] == "succeeded", run  # what it did, not what was asked
        assert run["rows_loaded"] == {"ticks": 10} and run["error"] is None
        wait_for_logs(server, f"/api/logs/search?q=finishing+anyway&pipeline_id={pipeline['id']}",
                      lambda body: len(body["logs"]) == 1)  # fmt: skip
    finally:
        server.stop()


def test_a_queued_run_left_by_a_stopped_service_is_failed_as_never_started(tmp_path: Path) -> None:
    env = {**ENV, "PIPETRACE_MAX_RUNS": "1"}
    server = start_server(tmp_path / "svc", env=env)
    pipeline = create(server, "dlt_code", {"code": TICKING_CODE})
    first = start(server, pipeline["id"])["run_id"]
    second = start(server, pipeline["id"])["run_id"]
    wait_for(lambda: status_of(server, first) == "running", "the first run started")
    assert status_of(server, second) == "queued"
    assert server.stop() == 0
    restarted = start_server(tmp_path / "svc", env=env)
    try:
        wait_for(lambda: status_of(restarted, second) != "queued", "the queued run settled")
        run = restarted.get(f"/api/runs/{second}").json()
        assert run["status"] == "failed"
        never = {"type": "Interrupted", "message": "the service stopped before the run started"}
        assert run["error"] == never
        assert not run_folder(restarted, second).exists()  # it never ran
        assert wait_for_run(restarted, first)["status"] == "succeeded"
    finally:
        restarted.stop()
