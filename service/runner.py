"""Runs pipelines, each in its own process, a bounded number at a time; the rest wait in a queue.

A run is a rendered script started with ``sys.executable``. It continues the trace of the request that
started it (``TRACEPARENT``) and sends its telemetry back to this service over OTLP; nothing is read
from its stdout but text it printed without logging, which becomes log records of the run. Its
outcome comes back in a small JSON result file, not as marker lines.
"""

from __future__ import annotations

import contextvars
import datetime
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators._envcarrier import EnvironmentSetter
from opentelemetry.trace import NonRecordingSpan, SpanContext

from exporters.store.pipelines import Pipeline, PipelineRepository
from instrumentation.context import pipeline_context
from service.auth import otlp_headers_env
from templates.render import render, template

# Where runs spool what they cannot send the service; the service drains it too (service.run_spool).
RUN_SPOOL = "run-spool"
_logger = logging.getLogger(__name__)
output_logger = logging.getLogger("pipetrace.run.output")

SCRIPT_NAME = "pipeline_run.py"  # never the folder's name: dlt imports a module named after the folder
CANCEL_GRACE_SECONDS = 15.0


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class RunManager:
    def __init__(
        self,
        repository: PipelineRepository,
        data_dir: Path,
        service_url: Callable[[], str | None],
        max_concurrent: int,
        extra_env: dict[str, str] | None = None,
        ingest_token: str | None = None,
    ) -> None:
        self.repository = repository
        self.ingest_token = ingest_token
        self.data_dir = data_dir
        self.service_url = service_url
        self.extra_env = extra_env or {}
        self._executor = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="pipetrace-run")
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def start(self, pipeline: Pipeline, overrides: dict[str, Any] | None = None) -> dict[str, str]:
        """Queue a run of ``pipeline`` under the current trace; return its run id and trace id.

        ``pipeline.params`` are the ones the run uses; ``overrides`` (the part of them sent for this
        run only) are kept in the run's record.
        """
        run_id = uuid.uuid4().hex[:16]
        span_context = trace.get_current_span().get_span_context()
        trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else None
        carrier: dict[str, str] = {}
        propagate.inject(carrier, setter=EnvironmentSetter())
        self.repository.add_run(pipeline.id, run_id, trace_id, overrides)
        self._executor.submit(self._execute, pipeline, run_id, carrier, span_context)
        return {"run_id": run_id, "trace_id": trace_id or ""}

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run; False when it had already finished."""
        run = self.repository.run(run_id)
        if run is None or run["status"] not in ("queued", "running"):
            return False
        with self._lock:
            self._cancelled.add(run_id)
            process = self._processes.get(run_id)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the run flushes its telemetry, then exits
            threading.Timer(CANCEL_GRACE_SECONDS, _kill_if_running, args=(process,)).start()
        elif run["status"] == "queued":
            self.repository.update_run(run_id, status="cancelled", finished_at=_now())
        return True

    def _environment(
        self, pipeline: Pipeline, run_id: str, run_dir: Path, carrier: dict[str, str]
    ) -> dict[str, str]:
        destinations = self.data_dir / "destinations"
        destinations.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PIPETRACE_", "SOURCES__"))}
        env.update(carrier)  # TRACEPARENT (and TRACESTATE): the run continues the request's trace
        env.update(
            {
                "PIPETRACE_PIPELINE_ID": pipeline.id,
                "PIPETRACE_RUN_ID": run_id,
                "PIPETRACE_RESULT_FILE": str(run_dir / "result.json"),
                "OTEL_SERVICE_NAME": "pipetrace-run",
                "DLT_DATA_DIR": str(self.data_dir / "dlt"),
                "RUNTIME__DLTHUB_TELEMETRY": "false",
                "DESTINATION__DUCKDB__CREDENTIALS": str(
                    self.data_dir / "destinations" / f"{pipeline.id}.duckdb"
                ),
                "FALLBACK_DIRECTORY": str(self.data_dir / RUN_SPOOL),
                "PYTHONUNBUFFERED": "1",
            }
        )
        url = self.service_url()
        if url:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = url
            if self.ingest_token is not None:
                # The official OTLP exporters read their headers from here.
                env["OTEL_EXPORTER_OTLP_HEADERS"] = otlp_headers_env(self.ingest_token)
        env.update(self.extra_env)
        env.update(self.repository.secret_env(pipeline.id))  # credentials: environment only, never the script
        return env

    def _execute(self, pipeline: Pipeline, run_id: str, carrier: dict[str, str], parent: SpanContext) -> None:
        with self._lock:
            if run_id in self._cancelled:
                return
        run_dir = self.data_dir / "runs" / run_id
        token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
        try:
            with pipeline_context(pipeline_id=pipeline.id, run_id=run_id):
                self._run_process(pipeline, run_id, run_dir, carrier)
        except Exception as exc:
            _logger.exception("run %s of pipeline %s could not be started", run_id, pipeline.id)
            self.repository.update_run(run_id, status="failed", finished_at=_now(),
                                       error={"type": type(exc).__name__, "message": str(exc)})  # fmt: skip
        finally:
            otel_context.detach(token)
            with self._lock:
                self._processes.pop(run_id, None)

    def _run_process(self, pipeline: Pipeline, run_id: str, run_dir: Path, carrier: dict[str, str]) -> None:
        rendered = render(
            pipeline.template, pipeline.params | _secret_placeholders(pipeline), pipeline.dlt_name
        )
        run_dir.mkdir(parents=True, exist_ok=True)
        script = run_dir / SCRIPT_NAME
        script.write_text(rendered.script)
        env = self._environment(pipeline, run_id, run_dir, carrier)
        self.repository.update_run(run_id, status="running", started_at=_now())
        _logger.info("run %s of pipeline %s (%s) started", run_id, pipeline.name, pipeline.template)
        process = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=run_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        with self._lock:
            self._processes[run_id] = process
            cancelled_early = run_id in self._cancelled
        if cancelled_early:
            process.send_signal(signal.SIGTERM)
        # Threads start with empty contextvars: run the pumps in a copy of this one, which holds the
        # run's trace context and pipeline context, so their records are linked to the run.
        outputs = ((process.stdout, logging.INFO, "stdout"), (process.stderr, logging.WARNING, "stderr"))
        pumps = [
            threading.Thread(target=contextvars.copy_context().run, args=(_pump, *output), daemon=True)
            for output in outputs
        ]
        for pump in pumps:
            pump.start()
        exit_code = process.wait()
        for pump in pumps:
            pump.join(timeout=10)
        self._finish(run_id, run_dir, exit_code)

    def _finish(self, run_id: str, run_dir: Path, exit_code: int) -> None:
        result_file = run_dir / "result.json"
        result: dict[str, Any] = orjson.loads(result_file.read_bytes()) if result_file.exists() else {}
        with self._lock:
            cancelled = run_id in self._cancelled
        status = (
            "cancelled"
            if cancelled
            else result.get("status") or ("succeeded" if exit_code == 0 else "failed")
        )
        error = result.get("error")
        if status == "failed" and error is None:
            error = {
                "type": "ProcessExit",
                "message": f"the run exited with code {exit_code} and reported nothing",
            }
        warnings = (result.get("warnings") or []) if status == "succeeded" else []
        self.repository.update_run(
            run_id, status=status, finished_at=_now(), exit_code=exit_code,
            rows_loaded=result.get("rows_loaded") or {}, error=error, warnings=warnings or None,
        )  # fmt: skip
        # A cancel is what someone asked for, not a failure: it must not count among the errors.
        level = {"succeeded": logging.WARNING if warnings else logging.INFO, "cancelled": logging.INFO}
        said = f" with warnings: {'; '.join(warnings)}" if warnings else ""
        _logger.log(level.get(status, logging.ERROR), "run %s %s%s (exit code %d)", run_id, status, said,
                    exit_code)  # fmt: skip

    def shutdown(self) -> None:
        """Stop taking runs; cancel those in flight (they flush their telemetry) and wait for them."""
        with self._lock:
            running = list(self._processes.items())
        for run_id, _ in running:
            self.cancel(run_id)
        self._executor.shutdown(wait=True, cancel_futures=True)


def _kill_if_running(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()


def _secret_placeholders(pipeline: Pipeline) -> dict[str, Any]:
    """Secrets are not stored with the parameters; required ones get a placeholder to pass validation.

    The script never sees the value either way: secrets reach the run only through its environment.
    """
    spec = template(pipeline.template)
    return {key: "<secret>" for key in spec.secrets if key in spec.required and key not in pipeline.params}


def _pump(stream: IO[bytes] | None, level: int, name: str) -> None:
    """Each line the run printed without logging it becomes a log record of the run."""
    if stream is None:
        return
    with stream:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                output_logger.log(level, line, extra={"pipeline.stage": name})
