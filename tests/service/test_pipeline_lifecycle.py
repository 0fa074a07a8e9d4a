"""Acceptance: cancelling, restarting the service mid-run, bad input, and secrets kept out of the store."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ALLOW_USER_CODE, LiveServer, start_server
from tests.service.pipeline_helpers import create, start, wait_for_logs, wait_for_run
from tests.sources import API_TOKEN, api_params, start_rest_api

SLOW_CODE = textwrap.dedent(
    """
    import logging
    import time
    import dlt

    @dlt.resource(name="slow")
    def slow():
        for i in range(600):
            logging.getLogger("user.code").info("slow row %d", i)
            yield {"i": i}
            time.sleep(0.1)

    def data_source():
        return slow
    """
)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The conftest's server, letting dlt_code run: a developer on loopback who allowed it."""
    server = start_server(tmp_path / "live", env=ALLOW_USER_CODE)
    yield server
    server.stop()


def wait_for_status(server: LiveServer, run_id: str, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while server.get(f"/api/runs/{run_id}").json()["status"] != status:
        assert time.monotonic() < deadline, f"run {run_id} never became {status}"
        time.sleep(0.1)


def test_a_running_run_can_be_cancelled_and_its_telemetry_still_arrives(live_server: LiveServer) -> None:
    pipeline = create(live_server, "dlt_code", {"code": SLOW_CODE})
    run_id = start(live_server, pipeline["id"])["run_id"]
    wait_for_status(live_server, run_id, "running")
    wait_for_logs(
        live_server, f"/api/logs/search?q=slow+row&pipeline_id={pipeline['id']}", lambda b: b["logs"]
    )
    response = live_server.post(f"/api/runs/{run_id}/cancel", json={})
    assert response.status_code == 202
    run = wait_for_run(live_server, run_id, timeout=60)
    assert run["status"] == "cancelled"
    wait_for_logs(
        live_server,
        f"/api/logs/search?q=run+cancelled&pipeline_id={pipeline['id']}",
        lambda b: len(b["logs"]) == 1,
    )
    again = live_server.post(f"/api/runs/{run_id}/cancel", json={})
    assert again.status_code == 409 and again.json()["error"]["parameter"] == "run_id"


def test_a_run_that_died_with_the_service_is_marked_failed_saying_so(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc", env=ALLOW_USER_CODE)
    pipeline = create(server, "dlt_code", {"code": SLOW_CODE})
    run_id = start(server, pipeline["id"])["run_id"]
    wait_for_status(server, run_id, "running")
    manifest = server.data_dir / "runs" / run_id / "run.json"
    deadline = time.monotonic() + 30
    while not manifest.exists():
        assert time.monotonic() < deadline, "the run never wrote its manifest"
        time.sleep(0.05)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    os.killpg(json.loads(manifest.read_text())["pid"], signal.SIGKILL)  # the run dies too, reporting nothing
    restarted = start_server(tmp_path / "svc", env=ALLOW_USER_CODE)
    try:
        wait_for_status(restarted, run_id, "failed")
        run = restarted.get(f"/api/runs/{run_id}").json()
        assert run["error"]["type"] == "ProcessExit"
        assert run["error"]["message"].startswith("the run ended and reported no outcome")
        assert run["rows_loaded"] == {}
        assert restarted.get(f"/api/pipelines/{pipeline['id']}").json()["name"] == pipeline["name"]
    finally:
        restarted.stop()


def test_bad_pipeline_definitions_get_a_4xx_naming_the_problem(live_server: LiveServer) -> None:
    cases = [
        ({"name": "x", "template": "nope", "params": {}}, "template"),
        ({"name": "", "template": "simple", "params": {"bucket_url": "/x"}}, "name"),
        ({"name": "x", "template": "simple", "params": {"bucket_url": 7}}, "params.bucket_url"),
        (
            {"name": "x", "template": "simple", "params": {"bucket_url": "/x", "table_name": "a'; drop"}},
            "params.table_name",
        ),
        ({"name": "x", "template": "simple", "params": []}, "params"),
        ({"name": "x", "template": "simple", "params": {}, "extra": 1}, "extra"),
    ]
    for body, parameter in cases:
        response = live_server.post("/api/pipelines", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["parameter"] == parameter
    assert (
        live_server.post("/api/pipelines", data="{", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert live_server.get("/api/pipelines").json()["pipelines"] == []


def test_secret_values_never_reach_the_store_or_the_scripts(live_server: LiveServer) -> None:
    password = "Sql-Password-7c1d0e"
    for base_url in start_rest_api():
        api = create(
            live_server,
            "api",
            api_params(base_url),
        )
        sql = create(
            live_server,
            "sql_server",
            {"host": "127.0.0.1", "port": 1, "username": "sa", "password": password, "database": "shop"},
        )
        runs = [wait_for_run(live_server, start(live_server, p["id"])["run_id"]) for p in (api, sql)]
        assert [run["status"] for run in runs] == ["succeeded", "failed"]
        for run in runs:  # let every record of both runs arrive before looking
            wait_for_logs(
                live_server, f"/api/logs/correlation/{run['trace_id']}", lambda b: len(b["logs"]) > 3
            )
    live_server.get("/api/pipelines")
    assert live_server.stop() == 0  # flush everything into the file, and release it
    for secret in (API_TOKEN, password):
        for path in live_server.data_dir.rglob("*"):
            if path.is_file() and "secrets" not in path.parts and "destinations" not in path.parts:
                assert secret.encode() not in path.read_bytes(), f"{secret} found in {path}"
    # The store compresses text: look through its rows too, not only its bytes.
    import duckdb

    with duckdb.connect(str(live_server.data_dir / "telemetry.duckdb"), read_only=True) as con:
        for table, column in (
            ("logs", "body"),
            ("logs", "attributes"),
            ("logs", "resource_attributes"),
            ("spans", "attributes"),
            ("spans", "events"),
            ("pipelines", "params"),
            ("runs", "error"),
        ):
            for secret in (API_TOKEN, password):
                hits = con.execute(
                    f"SELECT count(*) FROM {table} WHERE contains({column}, ?)", [secret]
                ).fetchone()
                assert hits == (0,), f"{secret} stored in {table}.{column}"
        assert con.execute("SELECT count(*) FROM logs").fetchone()[0] > 20  # there was plenty to search
