"""Acceptance: pipelines run from the service, every line of a run under the run's trace id."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import ALLOW_USER_CODE, LiveServer, start_server
from tests.service.pipeline_helpers import create, start, wait_for_logs, wait_for_run

TRACE = "5e0c63257de34c92bf9efcd03927272e"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
REQUEST_SPAN = "POST /api/pipelines/<pipeline_id>/runs"
EXPECTED_SPANS = {REQUEST_SPAN, "run", "extract", "normalize", "load"}

USER_CODE = textwrap.dedent(
    """
    import dlt

    @dlt.resource(name="orders", primary_key="id")
    def orders():
        print("printed, not logged")
        yield [{"id": i, "amount": i * 10} for i in range(25)]

    def data_source():
        return orders
    """
)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The conftest's server, letting dlt_code run: a developer on loopback who allowed it."""
    server = start_server(tmp_path / "live", env=ALLOW_USER_CODE)
    yield server
    server.stop()


def destination_rows(server: LiveServer, pipeline_id: str, query: str) -> list[Any]:
    path = server.data_dir / "destinations" / f"{pipeline_id}.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(query).fetchall()


def test_templates_are_listed_with_their_parameter_schemas(live_server: LiveServer) -> None:
    templates = {t["name"]: t for t in live_server.get("/api/templates").json()["templates"]}
    assert set(templates) == {
        "api",
        "simple",
        "dlt_code",
        "simple_s3_anon_login",
        "simple_transform_field",
        "sql_db",
        "sql_db_old",
        "sql_db_transform",
        "sql_server",
        "sql_server_transform",
    }
    assert templates["dlt_code"]["parameters"]["required"] == ["code"]
    assert templates["sql_db_old"]["parameters"]["properties"]["password"]["x-secret"] is True


def test_a_run_is_traced_end_to_end(live_server: LiveServer) -> None:
    pipeline = create(live_server, "dlt_code", {"code": USER_CODE, "write_disposition": "merge"})
    started = start(live_server, pipeline["id"], TRACEPARENT)
    assert started["trace_id"] == TRACE
    run = wait_for_run(live_server, started["run_id"])
    assert run["status"] == "succeeded", run
    assert run["rows_loaded"] == {"orders": 25}
    assert run["trace_id"] == TRACE and run["duration_seconds"] > 0
    assert destination_rows(live_server, pipeline["id"], "SELECT count(*) FROM pipetrace.orders") == [(25,)]

    def complete(body: dict[str, Any]) -> bool:
        scopes = {log["scope"]["name"] for log in body["logs"] if log["scope"]}
        return {"dlt", "dlt.progress", "pipetrace.run.output"} <= scopes

    logs = wait_for_logs(
        live_server, f"/api/logs/pipeline/{pipeline['id']}?run_id={run['run_id']}&limit=1000", complete
    )["logs"]
    by_scope: dict[str, list[dict[str, Any]]] = {}
    for log in logs:
        by_scope.setdefault(log["scope"]["name"], []).append(log)
    assert {log["stage"] for log in by_scope["dlt"]} >= {"normalize", "load"}  # dlt's own lines, with stages
    assert {log["stage"] for log in by_scope["dlt.progress"]} >= {"extract", "normalize", "load"}
    assert any("Extract" in log["body"] for log in by_scope["dlt.progress"])
    (printed,) = by_scope["pipetrace.run.output"]
    assert printed["body"] == "printed, not logged" and printed["stage"] == "stdout"
    assert all(log["trace_id"] == TRACE for log in logs)
    assert all(log["pipeline_id"] == pipeline["id"] and log["run_id"] == run["run_id"] for log in logs)

    trace = wait_for_logs(
        live_server,
        f"/api/logs/correlation/{TRACE}",
        lambda body: {s["name"] for s in body["spans"]} >= EXPECTED_SPANS,
    )
    spans = {span["name"]: span for span in trace["spans"]}
    request_span = spans[REQUEST_SPAN]
    root = next(s for s in trace["spans"] if s["name"].startswith("pipeline "))
    assert root["parent_span_id"] == request_span["span_id"]
    assert spans["run"]["parent_span_id"] == root["span_id"]
    for step in ("extract", "normalize", "load"):
        assert spans[step]["parent_span_id"] == spans["run"]["span_id"]
        assert spans[step]["status"]["code"] != "ERROR"
    assert len(trace["logs"]) >= len(logs)


def test_a_failing_step_is_an_error_record_linked_to_its_span(live_server: LiveServer) -> None:
    code = textwrap.dedent(
        """
        import dlt

        @dlt.resource(name="broken")
        def broken():
            yield {"id": 1}
            raise RuntimeError("the source broke at row 2")

        def data_source():
            return broken
        """
    )
    pipeline = create(live_server, "dlt_code", {"code": code})
    run = wait_for_run(live_server, start(live_server, pipeline["id"])["run_id"])
    assert run["status"] == "failed"
    assert run["error"]["step"] == "extract"
    assert "the source broke at row 2" in run["error"]["message"]
    trace = wait_for_logs(
        live_server,
        f"/api/logs/correlation/{run['trace_id']}",
        lambda body: (
            any(s["name"] == "extract" for s in body["spans"])
            and any(log["body"].startswith("step extract failed") for log in body["logs"])
        ),
    )
    extract = next(s for s in trace["spans"] if s["name"] == "extract")
    assert extract["status"]["code"] == "ERROR"
    failure = next(log for log in trace["logs"] if log["body"].startswith("step extract failed"))
    assert failure["severity_text"] == "ERROR" and failure["span_id"] == extract["span_id"]
    assert "RuntimeError" in failure["attributes"]["exception.stacktrace"]
    assert "the source broke at row 2" in failure["attributes"]["exception.stacktrace"]


def test_a_crashing_script_fails_with_its_stack_trace(live_server: LiveServer) -> None:
    code = "import no_such_module_anywhere\n\n\ndef data_source():\n    return []\n"
    pipeline = create(live_server, "dlt_code", {"code": code})
    run = wait_for_run(live_server, start(live_server, pipeline["id"])["run_id"])
    assert run["status"] == "failed"
    assert run["error"]["type"] == "ModuleNotFoundError"
    trace = wait_for_logs(
        live_server,
        f"/api/logs/correlation/{run['trace_id']}",
        lambda body: any(log["severity_text"] == "ERROR" for log in body["logs"]),
    )
    error = next(log for log in trace["logs"] if log["severity_text"] == "ERROR")
    assert "no_such_module_anywhere" in error["attributes"]["exception.stacktrace"]


def test_unknown_pipelines_and_runs_are_404(live_server: LiveServer, tmp_path: Path) -> None:
    assert live_server.post("/api/pipelines/nope/runs", json={}).status_code == 404
    assert live_server.get("/api/runs/nope").status_code == 404
    assert live_server.post("/api/runs/nope/cancel", json={}).status_code == 404
