"""``pipetrace run TEMPLATE --param key=value ...``: run one pipeline here, with its progress on screen."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import click
import psutil
import requests

from service import service_client
from service.auth import otlp_headers_env
from service.checked_settings import load_settings
from service.run_process import REGISTERED, RESULT, read_json, this_client, write_manifest
from service.runner import RUN_SPOOL, SCRIPT_NAME
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
@service_client.service_url_option
def run_command(template: str, params: tuple[str, ...], name: str | None, service_url: str) -> None:
    """Run one pipeline here, in the foreground, as a run of the service at --service-url.

    The run is recorded by the service like the runs it starts itself, and its telemetry goes there.
    When no service answers, the telemetry is spooled where the service drains it, and the run is
    recorded when a service starts on the same data folder.
    """
    settings = load_settings()
    values = dict(_parse_param(raw) for raw in params)
    pipeline_name = name or template
    pipeline_id = pipeline_name.lower().replace(" ", "_")
    try:
        rendered = render(
            template, values, f"cli_{''.join(c if c.isalnum() else '_' for c in pipeline_id)}"[:60]
        )
    except TemplateError as exc:
        raise click.UsageError(str(exc)) from exc
    data_dir = settings.data_dir.resolve()
    run_id = uuid.uuid4().hex[:16]
    trace_id = secrets.token_hex(16)
    run_dir = data_dir / "runs" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / SCRIPT_NAME).write_text(rendered.script)
    (data_dir / "destinations").mkdir(parents=True, exist_ok=True)
    spool = data_dir / RUN_SPOOL
    service_url = service_url.rstrip("/")
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "trace_id": trace_id,
        "pipeline": {
            # The id the run's telemetry carries when no service answers: the pipeline a service
            # creates when it adopts the run gets it (a name it knows already keeps its own id).
            "id": hashlib.sha256(pipeline_name.strip().encode()).hexdigest()[:16],
            "name": pipeline_name,
            "template": template,
            "params": rendered.public_params,
        },
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(),
        # So a service on this machine sees this command end, even killed before it reports.
        "client": this_client(run_dir),
    }
    client = _Service(service_url, settings.api_token_value)
    run = client.register(manifest) if client.answers else None
    registered = run is not None
    # Its logs and spans are the pipeline's: tagged with the id the service knows it by.
    telemetry_pipeline_id = run["pipeline_id"] if run is not None else manifest["pipeline"]["id"]
    if not client.answers:
        click.echo(
            f"no Pipetrace service answers at {service_url}: the run's telemetry is spooled in {spool}, "
            f"and the run is recorded when a service starts on {data_dir}",
            err=True,
        )
    env = {
        **os.environ,
        **rendered.secret_env,
        "TRACEPARENT": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        "PIPETRACE_PIPELINE_ID": telemetry_pipeline_id,
        "PIPETRACE_RUN_ID": run_id,
        "PIPETRACE_RESULT_FILE": str(run_dir / RESULT),
        "PIPETRACE_CONSOLE": "true",
        "DLT_DATA_DIR": str(data_dir / "dlt"),
        "DESTINATION__DUCKDB__CREDENTIALS": str(data_dir / "destinations" / f"{pipeline_id}.duckdb"),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        # Always over OTLP to the service, never into its DuckDB file: what cannot be sent is spooled
        # where the service drains it (service.run_spool), now or when it starts.
        "OTEL_EXPORTER_OTLP_ENDPOINT": service_url,
        "FALLBACK_DIRECTORY": str(spool),
    }
    if not client.answers:
        env["PIPETRACE_SERVICE_AWAY"] = "true"
    if settings.ingest_token_value is not None and "OTEL_EXPORTER_OTLP_HEADERS" not in os.environ:
        env["OTEL_EXPORTER_OTLP_HEADERS"] = otlp_headers_env(settings.ingest_token_value)
    click.echo(f"run {run_id} of {template}: trace {trace_id}", err=True)
    process = subprocess.Popen([sys.executable, str(run_dir / SCRIPT_NAME)], cwd=run_dir, env=env)
    # The manifest a service reads to adopt the run if it was not recorded (or not told the outcome).
    write_manifest(run_dir, {**manifest, **_identity(process.pid)})
    if registered:
        (run_dir / REGISTERED).touch()
    try:
        code = process.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the run too: let it flush and report
        code = process.wait()
    result = read_json(run_dir / RESULT) or {
        "status": "failed",
        "error": {
            "type": "ProcessExit",
            "message": f"the run exited with code {code} and reported no outcome",
        },
        "exit_code": code,
    }
    reported = registered and client.report(run_id, result)
    click.echo(f"{result['status']}: rows loaded {result.get('rows_loaded') or {}}")
    error: dict[str, Any] = result.get("error") or {}
    if error:
        click.echo(f"error: {error.get('type')}: {error.get('message')}")
    if registered:
        click.echo(f"run {service_url}/api/runs/{run_id}" + ("" if reported else " (outcome not reported)"))
        click.echo(f"trace id {trace_id}; logs and spans: {service_url}/api/logs/correlation/{trace_id}")
    else:
        left = sum(1 for _ in spool.glob("otlp-*/*.otlp.json")) if spool.is_dir() else 0
        where = f"spooled in {spool} ({left} files)" if left else f"sent to {service_url}"
        click.echo(f"trace id {trace_id}; logs and spans: {where}; the run is recorded when a service starts")
    sys.exit(0 if code == 0 and result["status"] == "succeeded" else 1)


def _identity(pid: int) -> dict[str, Any]:
    try:
        return {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    except psutil.Error:
        return {"pid": pid}


class _Service:
    """The service at ``url``, as far as this run needs it: is it there, record the run, its outcome."""

    def __init__(self, url: str, api_token: str | None) -> None:
        self.url = url
        self.headers = service_client.headers(api_token)
        self.answers = service_client.answers(url)

    def register(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """The run as the service recorded it, or None."""
        response = self._post("/api/runs", manifest, 201, "record the run")
        run = response.json() if response is not None else None
        return run if isinstance(run, dict) and isinstance(run.get("pipeline_id"), str) else None

    def report(self, run_id: str, result: dict[str, Any]) -> bool:
        return self._post(f"/api/runs/{run_id}/outcome", result, 200, "take the run's outcome") is not None

    def _post(self, path: str, body: dict[str, Any], expected: int, what: str) -> requests.Response | None:
        try:
            response = requests.post(f"{self.url}{path}", json=body, headers=self.headers, timeout=10)
        except requests.RequestException as exc:
            click.echo(f"the service at {self.url} did not {what}: {exc}", err=True)
            return None
        if response.status_code != expected:
            problem = service_client.error_of(response)
            click.echo(f"the service at {self.url} did not {what}: {problem}", err=True)
            return None
        return response
