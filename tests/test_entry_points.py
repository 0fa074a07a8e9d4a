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
from tests.otlp_sinks import http_sink

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
    "config file": {"OTEL_CONFIG_FILE": "{tmp}/outside-config.yaml"},
}
# What a program outside the service puts in its own config file to write into the store.
OUTSIDE_CONFIG = """
file_format: "1.0"
resource:
  attributes:
    - name: service.name
      value: ${OTEL_SERVICE_NAME}
tracer_provider:
  processors:
    - batch:
        exporter:
          duckdb:
            path: ${PIPETRACE_DB}
logger_provider:
  processors:
    - batch:
        exporter:
          duckdb:
            path: ${PIPETRACE_DB}
"""


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_separate_process_writes_through_the_entry_points(tmp_path: Path, route: str) -> None:
    data_dir = tmp_path / "data"
    script = tmp_path / "outside.py"
    script.write_text(PROGRAM)
    (tmp_path / "outside-config.yaml").write_text(OUTSIDE_CONFIG)
    env = {
        **os.environ,
        **{key: value.format(tmp=tmp_path) for key, value in ROUTES[route].items()},
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


def test_config_file_properties_reach_the_exporter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.configuration import load_config_file

    from exporters import DuckDBLogRecordExporter

    monkeypatch.setenv("MAX_RETRY_ATTEMPTS", "7")
    monkeypatch.setenv("CIRCUIT_BREAKER_TIMEOUT", "2.5")
    monkeypatch.setenv("PIPETRACE_DB", str(tmp_path / "from-config.duckdb"))
    config = load_config_file(str(REPOSITORY / "otel-config.yaml"))
    properties = config.logger_provider.processors[0].batch.exporter.additional_properties["duckdb"]
    exporter = DuckDBLogRecordExporter(**properties)
    try:
        assert exporter.settings.max_retry_attempts == 7
        assert exporter.settings.circuit_breaker_timeout == 2.5
        assert exporter.settings.fallback_max_files == 100  # the seed's default
        assert exporter.store.path == str(tmp_path / "from-config.duckdb")
    finally:
        exporter.shutdown()


def test_a_wrong_property_is_refused_by_name() -> None:
    from pydantic import ValidationError

    from exporters import DuckDBLogRecordExporter

    with pytest.raises(ValidationError, match="max_retry_attempts"):
        DuckDBLogRecordExporter(max_retry_attempts="many")
    with pytest.raises(ValidationError, match="retries"):
        DuckDBLogRecordExporter(retries=3)


# The SDK's default names the program's executable: python, python3...
SDK_DEFAULT_NAME = f"unknown_service:{Path(sys.executable).name}"


@pytest.mark.parametrize(("service_name", "stored_as"), [(None, SDK_DEFAULT_NAME), ("billing", "billing")])
def test_a_program_run_with_the_repository_config_keeps_its_own_service_name(
    tmp_path: Path, service_name: str | None, stored_as: str
) -> None:
    """The README's ``OTEL_CONFIG_FILE=otel-config.yaml`` route: the file names the service's own
    resource too, but another program's records are never stored as service "pipetrace"."""
    data_dir = tmp_path / "data"
    script = tmp_path / "outside.py"
    script.write_text(PROGRAM)
    env = {key: value for key, value in os.environ.items() if key != "OTEL_SERVICE_NAME"}
    with http_sink() as collector:  # the file's OTLP exporters forward here instead of to localhost:4318
        env |= {
            "OTEL_CONFIG_FILE": str(REPOSITORY / "otel-config.yaml"),
            "PIPETRACE_DB": str(data_dir / "telemetry.duckdb"),
            "FALLBACK_DIRECTORY": str(tmp_path / "spool"),
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            **({"OTEL_SERVICE_NAME": service_name} if service_name else {}),
        }
        result = subprocess.run(
            [str(BIN / "opentelemetry-instrument"), sys.executable, str(script)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trace_id = result.stdout.strip().splitlines()[-1]
    app = create_app(data_dir=data_dir)
    try:
        found = app.test_client().get(f"/api/logs/correlation/{trace_id}").get_json()
        assert [log["service_name"] for log in found["logs"]] == [stored_as]
        assert [span["service_name"] for span in found["spans"]] == [stored_as]
    finally:
        close_app(app)
