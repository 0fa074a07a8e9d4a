"""``pipetrace run TEMPLATE --param key=value ...``: run one pipeline here, with its progress on screen."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import click
import requests

from service.auth import otlp_headers_env
from service.checked_settings import load_settings
from service.runner import SCRIPT_NAME
from templates.render import TemplateError, render


def _parse_param(raw: str) -> tuple[str, Any]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{raw!r} is not key=value", param_hint="--param")
    if value.startswith("@"):  # key=@file: the file's text, e.g. dlt_code's code
        try:
            return key, Path(value[1:]).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else "not UTF-8 text"
            message = f"{key}: cannot read {value[1:]}: {reason}"
            raise click.BadParameter(message, param_hint="--param") from exc
    try:
        return key, json.loads(value)  # numbers, booleans, lists and objects as JSON
    except json.JSONDecodeError:
        return key, value


def _service_at(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=0.5).ok
    except requests.RequestException:
        return False


@click.command("run")
@click.argument("template")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A template parameter; VALUE is JSON if it parses as JSON, @FILE reads a file.",
)
@click.option("--name", default=None, help="Pipeline name (default: the template's).")
@click.option(
    "--endpoint",
    default=None,
    help="Send telemetry over OTLP to this service; by default a running local service is used, "
    "else the DuckDB file directly.",
)
def run_command(template: str, params: tuple[str, ...], name: str | None, endpoint: str | None) -> None:
    """Run one pipeline locally, show its progress, and say where its telemetry went."""
    settings = load_settings()
    values = dict(_parse_param(raw) for raw in params)
    pipeline_id = (name or template).lower().replace(" ", "_")
    try:
        rendered = render(
            template, values, f"cli_{''.join(c if c.isalnum() else '_' for c in pipeline_id)}"[:60]
        )
    except TemplateError as exc:
        raise click.UsageError(str(exc)) from exc
    run_id = uuid.uuid4().hex[:16]
    trace_id = secrets.token_hex(16)
    run_dir = settings.data_dir.resolve() / "runs" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / SCRIPT_NAME).write_text(rendered.script)
    local_url = f"http://{settings.host}:{settings.port}"
    endpoint = endpoint or (local_url if _service_at(local_url) else None)
    env = {
        **os.environ,
        **rendered.secret_env,
        "TRACEPARENT": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        "PIPETRACE_PIPELINE_ID": pipeline_id,
        "PIPETRACE_RUN_ID": run_id,
        "PIPETRACE_RESULT_FILE": str(run_dir / "result.json"),
        "PIPETRACE_CONSOLE": "true",
        "PIPETRACE_DB": str(settings.database.resolve()),
        "DLT_DATA_DIR": str(settings.data_dir.resolve() / "dlt"),
        "DESTINATION__DUCKDB__CREDENTIALS": str(
            settings.data_dir.resolve() / "destinations" / f"{pipeline_id}.duckdb"
        ),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }
    (settings.data_dir.resolve() / "destinations").mkdir(parents=True, exist_ok=True)
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        if settings.ingest_token_value is not None and "OTEL_EXPORTER_OTLP_HEADERS" not in os.environ:
            env["OTEL_EXPORTER_OTLP_HEADERS"] = otlp_headers_env(settings.ingest_token_value)
    click.echo(f"run {run_id} of {template}: trace {trace_id}", err=True)
    code = subprocess.call([sys.executable, str(run_dir / SCRIPT_NAME)], cwd=run_dir, env=env)
    result_file = run_dir / "result.json"
    result: dict[str, Any] = (
        json.loads(result_file.read_text()) if result_file.exists() else {"status": "failed"}
    )
    where = (
        f"{endpoint}/api/logs/correlation/{trace_id}"
        if endpoint
        else f"{settings.database} (trace {trace_id})"
    )
    click.echo(f"{result['status']}: rows loaded {result.get('rows_loaded') or {}}")
    error: dict[str, Any] = result.get("error") or {}
    if error:
        click.echo(f"error: {error.get('type')}: {error.get('message')}")
    click.echo(f"trace id {trace_id}; logs and spans: {where}")
    sys.exit(0 if code == 0 and result["status"] == "succeeded" else 1)
