"""Runs pipelines, each in its own detached process, a bounded number at a time; the rest wait.

A run is a rendered script started with ``sys.executable`` in a session of its own, its output going
to ``output.log`` in its run folder (lines it prints become log records of the run in the run itself:
``templates.output_capture``). It continues the trace of the request that started it
(``TRACEPARENT``) and sends its telemetry to this service over OTLP, spooling into ``run-spool/`` what
it cannot send, which the service drains (``service.run_spool``). Its outcome comes back in a JSON
result file, not as marker lines.

One model for restarts (``service.run_process`` keeps each run's manifest in its folder):

- Stopping the service (SIGTERM, Ctrl-C) does not stop its runs: they finish on their own and write
  their outcome; only a cancel ends a run early.
- A service that starts adopts what the last one left: a run that finished meanwhile gets the status,
  rows and error of its result file; a run still alive (same pid *and* process start time) is watched
  again, and can be cancelled; a run that ended without an outcome (killed, or the machine stopped)
  is failed, saying so; a run that was still queued is failed as never started.
- Every status is the run's own: a cancelled run that finished anyway is ``succeeded`` with its rows.
"""

from __future__ import annotations

import datetime
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators._envcarrier import EnvironmentSetter
from opentelemetry.trace import NonRecordingSpan, SpanContext

from exporters.store.pipelines import FINISHED, DuplicateName, Pipeline, PipelineRepository
from instrumentation.context import pipeline_context
from instrumentation.redaction import DEFAULT_REDACTOR, Redactor
from service.auth import otlp_headers_env
from service.run_manifest import InvalidManifest, check_manifest
from service.run_process import (
    CANCEL_REQUESTED,
    MANIFEST,
    OUTPUT,
    REGISTERED,
    RESULT,
    RunProcess,
    found_process,
    owned_by,
    read_json,
    watched_client,
    write_manifest,
)
from templates.render import render, template

# Where runs spool what they cannot send the service; the service drains it too (service.run_spool).
RUN_SPOOL = "run-spool"
_logger = logging.getLogger(__name__)

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
        redactor: Redactor = DEFAULT_REDACTOR,
    ) -> None:
        self.repository = repository
        self.redactor = redactor
        self.ingest_token = ingest_token
        self.data_dir = data_dir
        self.service_url = service_url
        self.extra_env = extra_env or {}
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._processes: dict[str, RunProcess] = {}
        self._cancelled: set[str] = set()
        # Runs started or registered by this service: adoption (which may still be running when the
        # first requests arrive) is only about what an earlier service left.
        self._own: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def run_dir(self, run_id: str) -> Path:
        return self.data_dir / "runs" / run_id

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
        with self._lock:
            self._own.add(run_id)
        self.repository.add_run(pipeline.id, run_id, trace_id, overrides)
        # A daemon thread per run, not a pool: a service that stops must not wait for its runs.
        threading.Thread(
            target=self._queued, args=(pipeline, run_id, carrier, span_context),
            name=f"pipetrace-run-{run_id}", daemon=True,
        ).start()  # fmt: skip
        return {"run_id": run_id, "trace_id": trace_id or ""}

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run; False when it had already finished."""
        run = self.repository.run(run_id)
        if run is None or run["status"] not in ("queued", "running"):
            return False
        with self._lock:
            self._cancelled.add(run_id)
            process = self._processes.get(run_id)
        run_dir = self.run_dir(run_id)
        if run_dir.is_dir():  # kept for a service that restarts before the run ends
            (run_dir / CANCEL_REQUESTED).touch()
        if process is None and run["status"] == "running":
            # A run of an earlier service that adoption has not reached yet: found by its manifest.
            manifest = read_json(run_dir / MANIFEST)
            process = found_process(manifest) if manifest is not None else None
        if process is not None and process.alive():
            _terminate(process)
        elif run["status"] == "queued":
            self.repository.update_run(run_id, status="cancelled", finished_at=_now())
        return True

    def _environment(
        self, pipeline: Pipeline, run_id: str, run_dir: Path, carrier: dict[str, str], secrets: dict[str, str]
    ) -> dict[str, str]:
        destinations = self.data_dir / "destinations"
        destinations.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PIPETRACE_", "SOURCES__"))}
        env.update(carrier)  # TRACEPARENT (and TRACESTATE): the run continues the request's trace
        env.update(
            {
                "PIPETRACE_PIPELINE_ID": pipeline.id,
                "PIPETRACE_RUN_ID": run_id,
                "PIPETRACE_RESULT_FILE": str(run_dir / RESULT),
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
        env.update(secrets)  # credentials: environment only, never the script
        return env

    def _queued(self, pipeline: Pipeline, run_id: str, carrier: dict[str, str], parent: SpanContext) -> None:
        """Wait for a free slot, then run; a service stopping meanwhile leaves the run queued, and the
        next start settles it."""
        while not self._slots.acquire(timeout=0.5):
            if self._stopping.is_set():
                return
        try:
            with self._lock:
                if run_id in self._cancelled or self._stopping.is_set():
                    return
            self._execute(pipeline, run_id, carrier, parent)
        finally:
            self._slots.release()

    def _execute(self, pipeline: Pipeline, run_id: str, carrier: dict[str, str], parent: SpanContext) -> None:
        run_dir = self.run_dir(run_id)
        token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
        try:
            with pipeline_context(pipeline_id=pipeline.id, run_id=run_id):
                process = self._spawn(pipeline, run_id, run_dir, carrier)
                self._watch(run_id, process)
        except Exception as exc:
            _logger.exception("run %s of pipeline %s could not be started", run_id, pipeline.id)
            error = {"type": type(exc).__name__, "message": str(exc)}
            self.repository.update_run(
                run_id, status="failed", finished_at=_now(), error=self._redacted(error)
            )
        finally:
            otel_context.detach(token)

    def _spawn(self, pipeline: Pipeline, run_id: str, run_dir: Path, carrier: dict[str, str]) -> RunProcess:
        stored = self.repository.secret_env(pipeline.id)
        params = pipeline.params | _secret_placeholders(pipeline)
        rendered = render(pipeline.template, params, pipeline.dlt_name, known_secrets=stored)
        run_dir.mkdir(parents=True, exist_ok=True)
        script = run_dir / SCRIPT_NAME
        script.write_text(rendered.script)
        # A pipeline stored before credentials in ordinary fields were found has them in its parameters:
        # they reach this run through the environment too, never its script.
        env = self._environment(pipeline, run_id, run_dir, carrier, {**rendered.secret_env, **stored})
        self.repository.update_run(run_id, status="running", started_at=_now())
        _logger.info("run %s of pipeline %s (%s) started", run_id, pipeline.name, pipeline.template)
        with open(run_dir / OUTPUT, "ab") as output:
            popen = subprocess.Popen(
                [sys.executable, str(script)], cwd=run_dir, env=env, stdin=subprocess.DEVNULL,
                stdout=output, stderr=output, start_new_session=True,
            )  # fmt: skip
        process = RunProcess.spawned(popen)
        write_manifest(
            run_dir,
            {"run_id": run_id, "pipeline_id": pipeline.id, "pid": process.pid,
             "create_time": process.create_time},
        )  # fmt: skip
        with self._lock:
            self._processes[run_id] = process
            cancelled_early = run_id in self._cancelled
        if cancelled_early:
            (run_dir / CANCEL_REQUESTED).touch()
            process.terminate()
        return process

    def _watch(self, run_id: str, process: RunProcess) -> None:
        """Wait for the run's end and record it; a service stopping meanwhile records nothing (the
        next start adopts the outcome)."""
        with self._lock:
            self._processes[run_id] = process
        try:
            exit_code = process.wait(self._stopping)
            if not self._stopping.is_set():
                self._finish(run_id, exit_code)
        finally:
            with self._lock:
                self._processes.pop(run_id, None)

    def _finish(self, run_id: str, exit_code: int | None, run_dir: Path | None = None) -> None:
        """Record what the run did: its result file's status, rows and error, whatever was asked."""
        run_dir = run_dir or self.run_dir(run_id)
        result = read_json(run_dir / RESULT) or {}
        with self._lock:
            cancel_requested = run_id in self._cancelled
        cancel_requested = cancel_requested or (run_dir / CANCEL_REQUESTED).exists()
        status = result.get("status")
        error = result.get("error")
        if status not in FINISHED:
            status = "cancelled" if cancel_requested else "failed"
            error = _no_outcome(run_dir, exit_code, cancel_requested)
        elif cancel_requested and status != "cancelled":
            _logger.info("run %s ended %s before its cancel took effect", run_id, status)
        if exit_code is None and isinstance(result.get("exit_code"), int):
            exit_code = result["exit_code"]
        warnings = (result.get("warnings") or []) if status == "succeeded" else []
        self.repository.update_run(
            run_id, status=status, finished_at=_finished_at(result) or _now(), exit_code=exit_code,
            rows_loaded=result.get("rows_loaded") or {}, error=self._redacted(error),
            warnings=warnings or None,
        )  # fmt: skip
        # A cancel is what someone asked for, not a failure: it must not count among the errors.
        level = logging.ERROR if status == "failed" else logging.WARNING if warnings else logging.INFO
        said = f" with warnings: {'; '.join(warnings)}" if warnings else ""
        _logger.log(level, "run %s %s%s (exit code %s)", run_id, status, said, exit_code)

    def register(self, manifest: dict[str, Any], watch: bool = True) -> dict[str, Any]:
        """Record a run that ``pipetrace run`` started (its manifest, checked by the caller) as a run
        of the pipeline of that name and template, created when there is none; return the run.
        ``watch``: settle it if its command ends without reporting (not for a run being adopted,
        which ``adopt`` settles)."""
        spec = manifest["pipeline"]
        pipeline = self.repository.named(spec["name"], spec["template"])
        if pipeline is None:
            # Names are unique: one that another template holds is refused (DuplicateName, a 409).
            pipeline = self.repository.create(
                spec["name"], spec["template"], spec["params"], {}, pipeline_id=spec.get("id")
            )
        with self._lock:
            self._own.add(manifest["run_id"])
        self.repository.add_run(pipeline.id, manifest["run_id"], manifest.get("trace_id"))
        started = _finished_at({"finished_at": manifest.get("started_at")}) or _now()
        self.repository.update_run(manifest["run_id"], status="running", started_at=started)
        _logger.info("run %s of pipeline %s registered by pipetrace run", manifest["run_id"], pipeline.name)
        client = watched_client(manifest.get("client")) if watch else None
        if client is not None:
            run_dir = Path(manifest["client"]["run_dir"])
            threading.Thread(
                target=self._watch_client, args=(manifest["run_id"], client, client.owner(), run_dir),
                name=f"pipetrace-cli-run-{manifest['run_id']}", daemon=True,
            ).start()  # fmt: skip
        run = self.repository.run(manifest["run_id"])
        assert run is not None
        return run

    def _watch_client(self, run_id: str, client: RunProcess, owner: int | None, run_dir: Path) -> None:
        """Settle a registered run whose ``pipetrace run`` ended without reporting (killed, or the
        service did not answer then): from its result file, once the run process it started, which
        may outlive it, has ended too. A command that reports ends after the report, so a run still
        ``running`` when it is gone is one nobody will report."""
        client.wait(self._stopping)
        if self._stopping.is_set() or not self._still_running(run_id):
            return
        if not owned_by(owner, run_dir, run_dir / MANIFEST, run_dir / RESULT, run_dir / OUTPUT):
            # The folder is named by the caller: read only what the command's own user wrote there.
            _logger.warning("run %s: %s is not the folder of the run's user; not read", run_id, run_dir)
            run_dir = self.run_dir(run_id)  # nothing there: settled as ended with no outcome
        run = found_process(read_json(run_dir / MANIFEST) or {})
        if run is not None:
            _logger.info("run %s: pipetrace run ended before its run; watching the run", run_id)
            run.wait(self._stopping)
            if self._stopping.is_set() or not self._still_running(run_id):
                return
        _logger.warning(
            "run %s: pipetrace run ended without reporting; outcome read from %s", run_id, run_dir
        )
        self._finish(run_id, None, run_dir)

    def _still_running(self, run_id: str) -> bool:
        run = self.repository.run(run_id)
        return run is not None and run["status"] == "running"

    def record_outcome(self, run_id: str, result: dict[str, Any]) -> bool:
        """The outcome ``pipetrace run`` reports for a run it registered; False when the run is not
        one that waits for it (finished already, or a run this service watches itself)."""
        run = self.repository.run(run_id)
        with self._lock:
            watched = run_id in self._processes
        if run is None or run["status"] != "running" or watched:
            return False
        self.repository.update_run(
            run_id, status=result["status"], finished_at=_finished_at(result) or _now(),
            exit_code=result.get("exit_code"), rows_loaded=result.get("rows_loaded") or {},
            error=self._redacted(result.get("error")),
        )  # fmt: skip
        _logger.info("run %s %s (reported by pipetrace run)", run_id, result["status"])
        return True

    def adopt(self) -> None:
        """Settle what the last service left: outcomes written while it was away, runs still alive
        (watched again), runs that ended without an outcome, and runs that never started; and record
        the runs ``pipetrace run`` started while no service answered."""
        self._adopt_cli_runs()
        for run_id, status in self.repository.unfinished_runs():
            with self._lock:
                if run_id in self._own:
                    continue
            run_dir = self.run_dir(run_id)
            manifest = read_json(run_dir / MANIFEST)
            if manifest is None:
                reason = (
                    "the service stopped before the run started"
                    if status == "queued"
                    else "the service stopped while the run was in flight, and the run left no manifest"
                )
                self.repository.update_run(
                    run_id, status="failed", finished_at=_now(),
                    error={"type": "Interrupted", "message": reason},
                )  # fmt: skip
                _logger.warning("run %s: %s; marked failed", run_id, reason)
                continue
            self._adopt_one(run_id, manifest)

    def _adopt_cli_runs(self) -> None:
        runs = self.data_dir / "runs"
        for manifest_path in sorted(runs.glob(f"*/{MANIFEST}")) if runs.is_dir() else []:
            run_dir = manifest_path.parent
            if (run_dir / REGISTERED).exists():
                continue
            manifest = read_json(manifest_path)
            if manifest is None or not isinstance(manifest.get("pipeline"), dict):
                continue  # a run of this service: it is in the store already
            if self.repository.run(run_dir.name) is None:
                try:
                    checked = check_manifest({**manifest, "run_id": run_dir.name})
                except InvalidManifest as exc:
                    _logger.warning(
                        "run folder %s is not a run pipetrace run wrote (%s); left alone", run_dir, exc
                    )
                    continue
                try:
                    self.register(checked, watch=False)
                except DuplicateName as exc:  # names are unique; this one is another template's
                    _logger.warning("run %s of pipetrace run not adopted: %s", run_dir.name, exc)
                    (run_dir / REGISTERED).touch()
                    continue
                with self._lock:  # not this service's own run: settled below, like the others
                    self._own.discard(run_dir.name)
                _logger.info(
                    "run %s of pipetrace run, started while no service answered, adopted", run_dir.name
                )
            (run_dir / REGISTERED).touch()

    def _adopt_one(self, run_id: str, manifest: dict[str, Any]) -> None:
        process = found_process(manifest)
        if process is None:
            _logger.info("run %s ended while the service was away; recording its outcome", run_id)
            self._finish(run_id, None)
            return
        _logger.info("run %s (pid %d) is still running; watching it again", run_id, process.pid)
        with self._lock:
            signalled = run_id in self._cancelled  # cancel() found it by its manifest already
        if (self.run_dir(run_id) / CANCEL_REQUESTED).exists() and not signalled:
            _terminate(process)  # cancelled while no service watched it: the cancel still holds
        threading.Thread(
            target=self._watch, args=(run_id, process), name=f"pipetrace-run-{run_id}", daemon=True
        ).start()

    def adopt_in_background(self, retry_seconds: float = 5.0) -> threading.Thread:
        """``adopt`` once the store answers: a store that is locked or away at start does not stop
        the service, and the runs are settled as soon as it is back."""

        def adopt_when_possible() -> None:
            while not self._stopping.is_set():
                try:
                    self.adopt()
                    return
                except Exception as exc:
                    _logger.warning("runs left by the last service not settled yet (%s); retrying", exc)
                    self._stopping.wait(retry_seconds)

        thread = threading.Thread(target=adopt_when_possible, name="pipetrace-run-adopt", daemon=True)
        thread.start()
        return thread

    def _redacted(self, error: Any) -> Any:
        """A run's error as the run record keeps it: the same redaction as its logs (the run's own
        result file is redacted by the run, but it may predate that or come from elsewhere)."""
        if isinstance(error, dict):
            return {key: self._redacted(value) for key, value in error.items()}
        if isinstance(error, list):
            return [self._redacted(value) for value in error]
        return self.redactor.text(error) if isinstance(error, str) else error

    def shutdown(self) -> None:
        """Stop taking runs. Runs in flight keep running on their own; the next start adopts them."""
        self._stopping.set()
        with self._lock:
            running = [run_id for run_id, process in self._processes.items() if process.alive()]
        if running:
            _logger.info(
                "%d runs keep running without the service (%s); its next start adopts them",
                len(running), ", ".join(running),
            )  # fmt: skip


def _terminate(process: RunProcess) -> None:
    process.terminate()  # the run flushes its telemetry and writes its outcome, then exits
    grace = threading.Timer(CANCEL_GRACE_SECONDS, process.kill)
    grace.daemon = True  # a service that stops meanwhile does not wait for it
    grace.start()


def _finished_at(result: dict[str, Any]) -> datetime.datetime | None:
    value = result.get("finished_at")
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        return None


def _no_outcome(run_dir: Path, exit_code: int | None, cancelled: bool) -> dict[str, Any]:
    """The error of a run that wrote no result, with the last lines it printed, which say why."""
    if cancelled:
        message = "the run was cancelled and ended before it could report (killed after the grace period)"
        return {"type": "Cancelled", "message": message}
    how = f"exited with code {exit_code}" if exit_code is not None else "ended"
    tail = _tail(run_dir / OUTPUT)
    message = f"the run {how} and reported no outcome" + (f"; its last output:\n{tail}" if tail else "")
    return {"type": "ProcessExit", "message": message}


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - limit))
            return handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _secret_placeholders(pipeline: Pipeline) -> dict[str, Any]:
    """Secrets are not stored with the parameters; required ones get a placeholder to pass validation.

    The script never sees the value either way: secrets reach the run only through its environment.
    """
    spec = template(pipeline.template)
    return {key: "<secret>" for key in spec.secrets if key in spec.required and key not in pipeline.params}
