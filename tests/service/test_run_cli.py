"""Acceptance: ``pipetrace run`` runs are runs of the service, whether or not it answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from tests.conftest import ALLOW_USER_CODE, LiveServer, free_port, start_server
from tests.service.pipeline_helpers import wait_for_logs, wait_for_run
from tests.service.test_run_restarts import TICKING_CODE, TICKS, ticks_logged, wait_for

BIN = Path(sys.executable).parent
STEPS = {"extract", "normalize", "load"}


def pipetrace_run(data_dir: Path, service_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPETRACE_DATA_DIR": str(data_dir), "PIPETRACE_URL": service_url}
    return subprocess.run(
        [str(BIN / "pipetrace"), "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def csv_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    (folder / "a.csv").write_text("id,name\n1,one\n2,two\n3,three\n")
    return folder


def simple_run(tmp_path: Path, data_dir: Path, service_url: str) -> subprocess.CompletedProcess[str]:
    return pipetrace_run(
        data_dir, service_url, "simple", "--param", f"bucket_url={csv_folder(tmp_path)}",
        "--param", "table_name=things", "--name", "local things",
    )  # fmt: skip


def ids_of(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    started = re.search(r"^run ([0-9a-f]{16}) of \w+: trace ([0-9a-f]{32})$", result.stderr, re.MULTILINE)
    assert started is not None, result.stderr
    return started.group(1), started.group(2)


def assert_traced(server: LiveServer, trace_id: str) -> None:
    def complete(body: dict[str, Any]) -> bool:
        spans = {span["name"] for span in body["spans"]}
        return {"run", *STEPS} <= spans and {log["stage"] for log in body["logs"]} >= STEPS

    wait_for_logs(server, f"/api/logs/correlation/{trace_id}", complete)


def assert_pipeline_logs(server: LiveServer, pipeline_id: str, trace_id: str) -> None:
    """The run's logs are among its pipeline's: tagged with the id the service knows it by."""
    logs = server.get(f"/api/logs/pipeline/{pipeline_id}?limit=1000").json()["logs"]
    assert logs and {log["trace_id"] for log in logs} == {trace_id}
    assert {log["pipeline_id"] for log in logs} == {pipeline_id}


def test_a_cli_run_is_a_run_of_the_service_that_answers(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc")
    try:
        result = simple_run(tmp_path, tmp_path / "cli", server.url)
        assert result.returncode == 0, result.stderr
        assert "succeeded: rows loaded {'things': 3}" in result.stdout
        assert "dlt.progress" in result.stderr or "Extract" in result.stderr  # the progress was on screen
        run_id, trace_id = ids_of(result)
        assert f"run {server.url}/api/runs/{run_id}\n" in result.stdout
        assert f"logs and spans: {server.url}/api/logs/correlation/{trace_id}" in result.stdout
        run = server.get(f"/api/runs/{run_id}").json()
        assert (run["status"], run["rows_loaded"], run["trace_id"]) == ("succeeded", {"things": 3}, trace_id)
        assert run["exit_code"] == 0 and run["error"] is None and run["duration_seconds"] > 0
        (pipeline,) = server.get("/api/pipelines").json()["pipelines"]
        assert (pipeline["name"], pipeline["template"]) == ("local things", "simple")
        listed = server.get(f"/api/pipelines/{pipeline['id']}").json()["runs"]
        assert [r["run_id"] for r in listed] == [run_id]  # on the Pipelines page with the rest
        assert_traced(server, trace_id)
        assert_pipeline_logs(server, pipeline["id"], trace_id)
        again = simple_run(tmp_path, tmp_path / "cli", server.url)
        assert again.returncode == 0, again.stderr
        assert len(server.get(f"/api/pipelines/{pipeline['id']}").json()["runs"]) == 2  # the same pipeline
    finally:
        server.stop()


def test_with_no_service_the_run_is_spooled_and_adopted_when_one_starts(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    data_dir = tmp_path / "data"
    result = simple_run(tmp_path, data_dir, url)
    assert result.returncode == 0, result.stderr
    assert f"no Pipetrace service answers at {url}" in result.stderr
    assert f"spooled in {data_dir / 'run-spool'}" in result.stdout
    assert not (data_dir / "telemetry.duckdb").exists()  # never the service's file
    assert list((data_dir / "run-spool").glob("otlp-*/*.otlp.json"))
    run_id, trace_id = ids_of(result)
    status = subprocess.run(
        [str(BIN / "pipetrace"), "spool", "status", "--json"],
        env={**os.environ, "PIPETRACE_DATA_DIR": str(data_dir)},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(status.stdout)["spools"]["run-spool/otlp-logs"]["records"] > 0  # and it says so

    server = start_server(data_dir)
    try:
        run = wait_for_run(server, run_id, timeout=30)
        assert (run["status"], run["rows_loaded"], run["trace_id"]) == ("succeeded", {"things": 3}, trace_id)
        assert_traced(server, trace_id)
        assert not list((data_dir / "run-spool").glob("otlp-*/*.otlp.json"))  # drained
        (pipeline,) = server.get("/api/pipelines").json()["pipelines"]
        assert pipeline["name"] == "local things"
        assert_pipeline_logs(server, pipeline["id"], trace_id)  # the id its telemetry carried
    finally:
        server.stop()
    restarted = start_server(data_dir)  # adopted once, not again
    try:
        (pipeline,) = restarted.get("/api/pipelines").json()["pipelines"]
        assert len(restarted.get(f"/api/pipelines/{pipeline['id']}").json()["runs"]) == 1
    finally:
        restarted.stop()


def test_pipetrace_run_exits_non_zero_on_failure(tmp_path: Path) -> None:
    code = tmp_path / "code.py"
    code.write_text("def data_source():\n    raise RuntimeError('no data today')\n")
    url = f"http://127.0.0.1:{free_port()}"
    result = pipetrace_run(tmp_path / "data", url, "dlt_code", "--param", f"code=@{code}")
    assert result.returncode == 1
    assert "failed" in result.stdout and "no data today" in result.stdout


def test_pipetrace_run_refuses_bad_parameters(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = pipetrace_run(tmp_path, url, "simple", "--param", "bucket_url=/x", "--param", "table_name=a b")
    assert result.returncode == 2 and "params.table_name" in result.stderr


def start_cli_run(tmp_path: Path, server: LiveServer, code: str) -> subprocess.Popen[str]:
    (tmp_path / "code.py").write_text(code)
    env = {
        **os.environ,
        **ALLOW_USER_CODE,
        "PIPETRACE_DATA_DIR": str(tmp_path / "cli"),
        "PIPETRACE_URL": server.url,
    }
    code_param = f"code=@{tmp_path / 'code.py'}"
    return subprocess.Popen(
        [str(BIN / "pipetrace"), "run", "dlt_code", "--param", code_param, "--name", "ticking"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def registered_run(server: LiveServer) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def running() -> bool:
        pipelines = server.get("/api/pipelines").json()["pipelines"]
        runs = server.get(f"/api/pipelines/{pipelines[0]['id']}").json()["runs"] if pipelines else []
        found[:] = runs
        return bool(runs) and runs[0]["status"] == "running"

    wait_for(running, "the cli run registered")
    return found[0]


def test_a_cli_run_whose_command_is_killed_is_settled_by_what_the_run_did(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc", env=ALLOW_USER_CODE)
    try:
        cli = start_cli_run(tmp_path, server, TICKING_CODE)
        run = registered_run(server)
        wait_for(lambda: bool(ticks_logged(server, run["pipeline_id"])), "a tick stored")
        cli.kill()  # the command only: its run goes on, and nobody will report its outcome
        cli.communicate(timeout=30)
        settled = wait_for_run(server, run["run_id"], timeout=90)
        assert (settled["status"], settled["rows_loaded"], settled["error"]) == (
            "succeeded",
            {"ticks": TICKS},
            None,
        )
    finally:
        server.stop()


def test_a_cli_run_killed_with_its_command_is_failed_saying_so(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc", env=ALLOW_USER_CODE)
    try:
        cli = start_cli_run(tmp_path, server, TICKING_CODE)
        run = registered_run(server)
        wait_for(lambda: bool(ticks_logged(server, run["pipeline_id"])), "a tick stored")
        for process in [psutil.Process(cli.pid), *psutil.Process(cli.pid).children(recursive=True)]:
            process.kill()  # the command and its run, before either could report
        cli.communicate(timeout=30)
        settled = wait_for_run(server, run["run_id"], timeout=60)
        assert settled["status"] == "failed" and settled["rows_loaded"] == {}
        assert settled["error"]["type"] == "ProcessExit"
        assert "reported no outcome" in settled["error"]["message"]
    finally:
        server.stop()
