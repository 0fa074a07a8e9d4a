"""How runs end, told truly: a run that loaded nothing warns, a cast of a missing field warns, and a
cancel is not an error anywhere (logs, stats, run record)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import ALLOW_USER_CODE, LiveServer, start_server
from tests.service.pipeline_helpers import create, start, wait_for_logs, wait_for_run, wait_for_status
from tests.service.test_pipeline_lifecycle import SLOW_CODE


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("outcomes") / "svc", env=ALLOW_USER_CODE)
    yield live
    live.stop()


def _logs(server: LiveServer, run: dict[str, Any], level: str | None = None) -> list[dict[str, Any]]:
    query = f"run_id={run['run_id']}&limit=1000" + (f"&level={level}" if level else "")
    logs: list[dict[str, Any]] = server.get(f"/api/logs/pipeline/{run['pipeline_id']}?{query}").json()["logs"]
    return logs


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"bucket_url": "/no/such/folder/anywhere"}, id="missing folder"),
        pytest.param({"file_glob": "*.parquet"}, id="glob matching nothing"),
    ],
)
def test_a_run_that_loads_nothing_succeeds_with_a_warning(
    server: LiveServer, tmp_path: Path, params: dict[str, str]
) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "rows.csv").write_text("id\n1\n")
    pipeline = create(server, "simple", {"bucket_url": str(folder), **params}, name=f"empty {params}")
    run = wait_for_run(server, start(server, pipeline["id"])["run_id"])
    assert run["status"] == "succeeded", run["error"]
    assert run["rows_loaded"] == {} and run["warnings"] == ["no rows loaded"]
    body = wait_for_logs(
        server,
        f"/api/logs/pipeline/{pipeline['id']}?run_id={run['run_id']}&level=WARN",
        lambda b: any("no rows loaded" in log["body"] for log in b["logs"]),
    )
    warning = next(log for log in body["logs"] if "no rows loaded" in log["body"])
    assert warning["severity_text"] in ("WARN", "WARNING") and warning["trace_id"] == run["trace_id"]
    stats = server.get(f"/api/logs/stats?pipeline_id={pipeline['id']}").json()
    assert stats["runs"]["succeeded_with_warnings"] == 1 and stats["runs"]["succeeded"] == 0
    assert stats["by_level"].get("WARN", 0) >= 1


def test_a_run_that_loads_rows_has_no_warning(server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("id\n1\n2\n")
    pipeline = create(server, "simple", {"bucket_url": str(tmp_path), "table_name": "rows"}, name="full")
    run = wait_for_run(server, start(server, pipeline["id"])["run_id"])
    assert run["status"] == "succeeded" and run["rows_loaded"] == {"rows": 2} and run["warnings"] == []
    stats = server.get(f"/api/logs/stats?pipeline_id={pipeline['id']}").json()
    assert stats["runs"]["succeeded"] == 1 and stats["runs"]["succeeded_with_warnings"] == 0


def test_casting_a_field_that_does_not_exist_warns_and_adds_no_column(
    server: LiveServer, tmp_path: Path
) -> None:
    lines = [json.dumps({"id": i, "score": str(i * 3)}) for i in range(4)]
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n")
    pipeline = create(
        server,
        "simple_transform_field",
        {
            "bucket_url": str(tmp_path),
            "file_glob": "*.jsonl",
            "file_format": "jsonl",
            "table_name": "scores",
            "transformations": [
                {"op": "cast", "field": "score", "type": "integer"},
                {"op": "cast", "field": "scroe", "type": "integer"},  # misspelt
            ],
        },
        name="misspelt cast",
    )
    run = wait_for_run(server, start(server, pipeline["id"])["run_id"])
    assert run["status"] == "succeeded", run["error"]
    body = wait_for_logs(
        server,
        f"/api/logs/pipeline/{pipeline['id']}?run_id={run['run_id']}&level=WARN",
        lambda b: any("'scroe'" in log["body"] for log in b["logs"]),
    )
    assert len([log for log in body["logs"] if "'scroe'" in log["body"]]) == 1  # once, not once per row
    path = server.data_dir / "destinations" / f"{pipeline['id']}.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        columns = {row[0]: row[1] for row in con.execute("DESCRIBE pipetrace.scores").fetchall()}
        assert "scroe" not in columns
        assert columns["score"] == "BIGINT"
        assert con.execute("SELECT sum(score) FROM pipetrace.scores").fetchall() == [(18,)]


def test_a_cancelled_run_is_no_error_in_logs_or_stats(server: LiveServer) -> None:
    pipeline = create(server, "dlt_code", {"code": SLOW_CODE}, name="cancelled only")
    run_id = start(server, pipeline["id"])["run_id"]
    wait_for_status(server, run_id, "running")
    wait_for_logs(server, f"/api/logs/search?q=slow+row&pipeline_id={pipeline['id']}", lambda b: b["logs"])
    assert server.post(f"/api/runs/{run_id}/cancel", json={}).status_code == 202
    run = wait_for_run(server, run_id)
    assert run["status"] == "cancelled"
    # Everything the run and the service said about it has arrived once "run cancelled" has.
    wait_for_logs(
        server,
        f"/api/logs/pipeline/{pipeline['id']}?run_id={run_id}&limit=1000",
        lambda b: (
            any(log["body"] == "run cancelled" for log in b["logs"])
            and any(log["body"].startswith(f"run {run_id} cancelled") for log in b["logs"])
        ),
    )
    assert _logs(server, run, level="ERROR") == []
    assert run["error_count"] == 0 if "error_count" in run else True
    listed = server.get(f"/api/pipelines/{pipeline['id']}/runs").json()["runs"]
    assert listed[0]["error_count"] == 0
    stats = server.get(f"/api/logs/stats?pipeline_id={pipeline['id']}").json()
    assert stats["runs"]["cancelled"] == 1 and stats["runs"]["failed"] == 0
    (row,) = stats["by_pipeline"]
    assert row["errors"] == 0  # so it is not among "pipelines that fail most"
    spans = server.get(f"/api/logs/correlation/{run['trace_id']}").json()["spans"]
    assert [span["name"] for span in spans if span["status"]["code"] == "ERROR"] == []
