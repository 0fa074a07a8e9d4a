"""Acceptance: any OTel-instrumented Python program can write to the store by naming ``duckdb``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from service.app import close_app, create_app

BIN = Path(sys.executable).parent

# A plain program that knows nothing of Pipetrace: it logs and traces through the OTel API only.
PROGRAM = textwrap.dedent(
    """
    import logging
    from opentelemetry import trace

    logging.getLogger().setLevel(logging.INFO)
    with trace.get_tracer("outside").start_as_current_span("outside-work") as span:
        logging.getLogger("outside.app").info("written by another process", extra={"pipeline.id": "ext"})
        print(format(span.get_span_context().trace_id, "032x"))
    """
)


REPOSITORY = Path(__file__).resolve().parent.parent

# Two standard ways to name the exporters: env vars, and the declarative configuration file.
ROUTES = {
    "env vars": {
        "OTEL_LOGS_EXPORTER": "duckdb",
        "OTEL_TRACES_EXPORTER": "duckdb",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
    },
    "otel-config.yaml": {"OTEL_CONFIG_FILE": str(REPOSITORY / "otel-config.yaml")},
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_separate_process_writes_through_the_entry_points(tmp_path: Path, route: str) -> None:
    data_dir = tmp_path / "data"
    script = tmp_path / "outside.py"
    script.write_text(PROGRAM)
    env = {
        **os.environ,
        **ROUTES[route],
        "OTEL_SERVICE_NAME": "outside-program",
        # The env route reads PIPETRACE_DATA_DIR; the config file substitutes PIPETRACE_DB.
        "PIPETRACE_DATA_DIR": str(data_dir),
        "PIPETRACE_DB": str(data_dir / "telemetry.duckdb"),
    }
    result = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    trace_id = result.stdout.strip().splitlines()[-1]
    assert (data_dir / "telemetry.duckdb").exists()

    app = create_app(data_dir=data_dir)
    try:
        client: FlaskClient = app.test_client()
        found = client.get(f"/api/logs/correlation/{trace_id}").get_json()
        assert [log["body"] for log in found["logs"]] == ["written by another process"]
        assert found["logs"][0]["service_name"] == "outside-program"
        assert found["logs"][0]["pipeline_id"] == "ext"
        assert [span["name"] for span in found["spans"]] == ["outside-work"]
        by_pipeline = client.get("/api/logs/pipeline/ext").get_json()
        assert [log["trace_id"] for log in by_pipeline["logs"]] == [trace_id]
    finally:
        close_app(app)
