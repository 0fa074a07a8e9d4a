"""Acceptance: ``pipetrace run`` runs are runs of the service, whether or not it answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import LiveServer, free_port, start_server
from tests.service.pipeline_helpers import wait_for_logs, wait_for_run

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
