"""What every generated pipeline script runs inside: its telemetry, its root span, dlt's logs and steps.

A rendered template only builds a dlt source; :func:`run` does the rest, the same way for all ten:

- OpenTelemetry providers for the run, exporting over OTLP to the service (``OTEL_EXPORTER_OTLP_ENDPOINT``)
  through the resilient exporter, or straight into the DuckDB store when no endpoint is set;
- one root span around the whole script that continues the trace the service handed over in
  ``TRACEPARENT``, so building the source (SQL reflection, say) is inside it too;
- dlt's own logger propagated into std logging at the run's level, its progress routed into the
  ``dlt.progress`` logger, and a span per dlt step (run > extract / normalize / load) through dlt's
  tracking hooks, with error status and the stack trace on the step that failed;
- the run's outcome (status, rows per table, error) written to ``PIPETRACE_RESULT_FILE`` as JSON.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators._envcarrier import EnvironmentGetter
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Span, SpanContext, Status, StatusCode
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from exporters.records import PIPELINE_ID, RUN_ID, STAGE
from instrumentation.context import PipelineContextLogProcessor, pipeline_context
from instrumentation.redaction import redact_text
from instrumentation.telemetry import Batching, ExcludeLoggers, Telemetry
from templates.output_capture import OUTPUT_LOGGER, OutputCapture

_logger = logging.getLogger("pipetrace.run")
PROGRESS_LOGGER = "dlt.progress"
NO_ROWS = "no rows loaded"
_LEVEL_NAMES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
# Loggers of the run's exporters and of the OTel SDK: kept out of the run's own telemetry.
DELIVERY_LOGGERS = ("exporters", "opentelemetry")


class RunEnvironment(BaseSettings):
    """What the runner tells a run, through its environment."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    pipeline_id: str = Field("local", validation_alias=AliasChoices("PIPETRACE_PIPELINE_ID", "pipeline_id"))
    run_id: str = Field("local", validation_alias=AliasChoices("PIPETRACE_RUN_ID", "run_id"))
    result_file: Path | None = Field(
        None, validation_alias=AliasChoices("PIPETRACE_RESULT_FILE", "result_file")
    )
    otlp_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "otlp_endpoint")
    )
    service_name: str = Field(
        "pipetrace-run", validation_alias=AliasChoices("OTEL_SERVICE_NAME", "service_name")
    )
    log_level: str = Field("INFO", validation_alias=AliasChoices("LOG_LEVEL", "log_level"))
    console: bool = Field(False, validation_alias=AliasChoices("PIPETRACE_CONSOLE", "console"))
    # Set by `pipetrace run` when no service answered: spool from the first failed batch on, rather
    # than spend seconds per batch on the OTLP exporter's retries against a port nobody listens on.
    service_away: bool = Field(False, validation_alias=AliasChoices("PIPETRACE_SERVICE_AWAY", "service_away"))


class _Fallback:
    """The run's current span and stage, for log records emitted where contextvars do not reach.

    dlt runs load jobs in its own thread pool, which does not copy contextvars: a record logged there
    has no current span. It is linked to the step that is running instead.
    """

    span_context: SpanContext | None = None
    stage: str | None = None


class RunFallbackLogProcessor(LogRecordProcessor):
    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        span_context = _Fallback.span_context
        if not record.trace_id and span_context is not None:
            record.trace_id = span_context.trace_id
            record.span_id = span_context.span_id
            record.trace_flags = span_context.trace_flags
        attributes = record.attributes
        if _Fallback.stage is not None and attributes is not None and STAGE not in attributes:
            attributes[STAGE] = _Fallback.stage  # type: ignore[index]

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _exporters(env: RunEnvironment) -> tuple[list[Any], list[Any]]:
    if env.otlp_endpoint:
        from exporters.otlp_exporter import ResilientOTLPLogExporter, ResilientOTLPSpanExporter

        base = env.otlp_endpoint.rstrip("/")
        away: dict[str, Any] = (
            {"timeout": 1.0, "max_retry_attempts": 0, "circuit_breaker_threshold": 1}
            if env.service_away
            else {}
        )
        return (
            [ResilientOTLPLogExporter(endpoint=f"{base}/v1/logs", **away)],
            [ResilientOTLPSpanExporter(endpoint=f"{base}/v1/traces", **away)],
        )
    from exporters.log_exporter import DuckDBLogRecordExporter
    from exporters.span_exporter import DuckDBSpanExporter

    log_exporter = DuckDBLogRecordExporter()
    return [log_exporter], [DuckDBSpanExporter(store=log_exporter.store, settings=log_exporter.settings)]


def _telemetry(env: RunEnvironment) -> Telemetry:
    log_exporters, span_exporters = _exporters(env)
    telemetry = Telemetry(
        resource=Resource.create(
            {"service.name": env.service_name, PIPELINE_ID: env.pipeline_id, RUN_ID: env.run_id}
        ),
        log_exporters=log_exporters,
        span_exporters=span_exporters,
        log_processors=[PipelineContextLogProcessor(), RunFallbackLogProcessor()],
        batching=Batching(max_export_batch_size=512, max_queue_size=65536, schedule_delay_millis=200),
    )
    # The run's own exporters say on stderr when they retry or spool; those lines are about delivering
    # the run's telemetry, not about the run, so they stay out of it (and cannot feed on themselves).
    telemetry.bridge_logging(
        _LEVEL_NAMES.get(env.log_level.upper(), env.log_level.upper()), exclude=DELIVERY_LOGGERS
    )
    # On the real stderr (a copy taken before OutputCapture points descriptor 2 at its pipe), so these
    # lines are not captured again as the run's output.
    stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    console = logging.StreamHandler(stderr)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S"))
    if env.console:  # pipetrace run: everything on screen, except printed lines, which are there already
        console.addFilter(ExcludeLoggers([OUTPUT_LOGGER]))
    else:  # a run of the service: only the delivery lines, into the run folder's output.log
        console.addFilter(lambda record: not ExcludeLoggers(DELIVERY_LOGGERS).filter(record))
    logging.getLogger().addHandler(console)
    return telemetry


def route_dlt_logs(level: int) -> None:
    """dlt's logger writes to its own stderr handler and does not propagate: send it into logging."""
    from dlt.common import logger as dlt_logger

    target = dlt_logger.LOGGER or logging.getLogger("dlt")
    for handler in list(target.handlers):
        target.removeHandler(handler)
    target.propagate = True
    target.disabled = False
    target.setLevel(level)


def _make_collector(tracer: trace.Tracer, level: int) -> Any:
    from dlt.common.runtime.collector import LogCollector

    class TracingCollector(LogCollector):
        """dlt's progress log, plus a span per dlt step through dlt's tracking hooks."""

        def __init__(self) -> None:
            super().__init__(
                log_period=1.0, logger=logging.getLogger(PROGRESS_LOGGER), dump_system_stats=False
            )
            self._run: tuple[Span, Any] | None = None
            self._steps: list[tuple[Span, Any, contextlib.ExitStack]] = []
            self.failed_step: str | None = None

        def on_start_trace(self, trace_: Any, step: str, pipeline: Any) -> None:
            route_dlt_logs(level)  # dlt may have created its logger again; keep it routed
            span = tracer.start_span("run", attributes={"dlt.pipeline": pipeline.pipeline_name})
            self._run = (span, otel_context.attach(trace.set_span_in_context(span)))

        def on_start_trace_step(self, trace_: Any, step: str, pipeline: Any) -> None:
            if step == "run":
                return
            span = tracer.start_span(step, attributes={STAGE: step})
            token = otel_context.attach(trace.set_span_in_context(span))
            stage = contextlib.ExitStack()
            stage.enter_context(pipeline_context(stage=step))
            _Fallback.span_context, _Fallback.stage = span.get_span_context(), step
            self._steps.append((span, token, stage))

        def on_end_trace_step(
            self, trace_: Any, step: Any, pipeline: Any, step_info: Any, send_state: bool
        ) -> None:
            _scrub_trace(trace_)  # before dlt pickles it into its working folder
            if step.step == "run" or not self._steps:
                return
            span, token, stage = self._steps.pop()
            if step.step_exception and (_Cancel.requested or _interrupted_step(step)):
                span.set_attribute("pipetrace.run.cancelled", True)
                _logger.info("step %s stopped: the run was cancelled", step.step)
            elif step.step_exception:
                self.failed_step = step.step
                _record_step_failure(span, step)
            stage.close()
            otel_context.detach(token)
            span.end()
            _Fallback.span_context, _Fallback.stage = None, None

        def on_end_trace(self, trace_: Any, pipeline: Any, send_state: bool) -> None:
            if self._run is None:
                return
            span, token = self._run
            if self.failed_step:
                span.set_status(Status(StatusCode.ERROR, f"step {self.failed_step} failed"))
            otel_context.detach(token)
            span.end()
            self._run = None

    return TracingCollector()


def _interrupted_step(step: Any) -> bool:
    """dlt keeps a step's exceptions as text: a KeyboardInterrupt among them is a cancel (Ctrl-C)."""
    return any(item.get("exception_type") == "KeyboardInterrupt" for item in step.exception_traces or [])


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # dlt's step infos and metrics
        named: Any = value
        return named._replace(**{name: _scrubbed(getattr(named, name)) for name in named._fields})
    return value


def _scrub_trace(trace_: Any) -> None:
    """Redact what dlt's trace (``trace.pickle`` in the pipeline's working folder) keeps as text: the
    last step's exception and its traces (a failing call's URL with ``api_key=``), its step info (the
    REST API source's lineage records its base URL, userinfo included), and resolved config values (dlt
    already leaves out those it knows are secret)."""
    if trace_.steps:
        step = trace_.steps[-1]
        trace_.steps[-1] = step._replace(
            step_exception=_scrubbed(step.step_exception),
            exception_traces=_scrubbed(step.exception_traces),
            step_info=_scrubbed(step.step_info),
        )
    trace_.resolved_config_values[:] = [
        value._replace(value=_scrubbed(value.value), default_value=_scrubbed(value.default_value))
        for value in trace_.resolved_config_values
    ]


def _record_step_failure(span: Span, step: Any) -> None:
    # Texts cut to a length are redacted first: a cut could leave half a secret that no pattern knows.
    traces = step.exception_traces or []
    last = traces[-1] if traces else {}
    kind = str(last.get("exception_type", "")) or "Exception"
    message = str(last.get("message", step.step_exception))
    # dlt keeps the frames; add the closing "Type: message" line so it reads as a Python traceback.
    stacktrace = (
        "Traceback (most recent call last):\n" + "".join(last.get("stack_trace") or []) + f"{kind}: {message}"
    )
    span.set_status(Status(StatusCode.ERROR, redact_text(str(step.step_exception))[:500]))
    span.add_event(
        "exception",
        {
            "exception.type": kind,
            "exception.message": redact_text(message)[:4000],
            "exception.stacktrace": redact_text(stacktrace)[:16000],
        },
    )
    # The error record is emitted while the failing step's span is current, so the two are linked.
    _logger.error(
        "step %s failed: %s",
        step.step,
        step.step_exception,
        extra={"exception.type": kind, "exception.message": message, "exception.stacktrace": stacktrace,
               STAGE: step.step},
    )  # fmt: skip


def _rows_loaded(pipeline: Any) -> dict[str, int]:
    info = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    counts = info.row_counts if info is not None else {}
    return {table: int(count) for table, count in counts.items() if not table.startswith("_dlt")}


def _write_result(env: RunEnvironment, result: dict[str, Any]) -> None:
    if env.result_file is not None:
        temporary = env.result_file.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(result))
        os.replace(temporary, env.result_file)


def _interrupted(error: BaseException | None) -> bool:
    """A cancellation, however deep dlt wrapped it (it turns KeyboardInterrupt into PipelineStepFailed)."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, KeyboardInterrupt):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


class _Cancel:
    """Set when the runner asked the run to stop: a step that fails from then on was cancelled."""

    requested = False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _Cancel.requested = True
    # One cancel is enough: a second SIGTERM must not cut short the flush and the outcome it started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM (a cancelled run) ends the run like Ctrl-C: telemetry is flushed before exit."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is _interrupt:  # else cancelled: stay deaf to repeats
            signal.signal(signal.SIGTERM, previous)


def run(
    *,
    pipeline_name: str,
    dataset_name: str,
    destination: str,
    write_disposition: str | None,
    build_source: Callable[[], Any],
) -> int:
    """Build the source and run it through a dlt pipeline, fully instrumented; return the exit code."""
    env = RunEnvironment()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", env.log_level.upper())
    telemetry = _telemetry(env)
    tracer = telemetry.tracer_provider.get_tracer("pipetrace.run")
    level = logging.getLogger().level
    parent = propagate.extract(os.environ, getter=EnvironmentGetter())
    started = time.time()
    result: dict[str, Any] = {"status": "failed", "rows_loaded": {}, "error": None}
    collector = None
    capture = OutputCapture()
    with (
        _stop_signals(),
        pipeline_context(pipeline_id=env.pipeline_id, run_id=env.run_id),
        tracer.start_as_current_span(f"pipeline {pipeline_name}", context=parent) as root,
    ):
        result["trace_id"] = format(root.get_span_context().trace_id, "032x")
        capture.start()
        try:
            import dlt

            collector = _make_collector(tracer, level)
            pipeline = dlt.pipeline(
                pipeline_name=pipeline_name,
                destination=destination,
                dataset_name=dataset_name,
                progress=collector,
            )
            route_dlt_logs(level)
            _logger.info("building the source of pipeline %s", pipeline_name)
            with pipeline_context(stage="build"):
                source = build_source()
            disposition: Any = write_disposition  # validated by the template's schema
            if disposition:
                pipeline.run(source, write_disposition=disposition)
            else:
                pipeline.run(source)
            result["rows_loaded"] = _rows_loaded(pipeline)
            result["status"] = "succeeded"
            loaded = {"pipetrace.rows_loaded": orjson.dumps(result["rows_loaded"]).decode()}
            if any(result["rows_loaded"].values()):
                _logger.info("pipeline %s loaded %s", pipeline_name, result["rows_loaded"], extra=loaded)
            else:
                # A folder that does not exist, a glob that matches nothing, an empty table: the run
                # worked, but a green run that loaded nothing is how such mistakes go unseen.
                result["warnings"] = [NO_ROWS]
                _logger.warning("pipeline %s: %s", pipeline_name, NO_ROWS, extra=loaded)
        except (KeyboardInterrupt, Exception) as exc:
            if _interrupted(exc) or _Cancel.requested:
                # Not an error: the span keeps an unset status and says why it ended.
                result["status"] = "cancelled"
                result["error"] = {"type": "Cancelled", "message": "the run was cancelled"}
                root.set_attribute("pipetrace.run.cancelled", True)
                _logger.warning("run cancelled")
            else:
                failed_step = getattr(collector, "failed_step", None)
                cause = exc.__cause__ or exc
                result["error"] = {
                    "type": type(cause).__name__,
                    # Redacted before it is cut, so that a cut never leaves half a secret unrecognised.
                    "message": redact_text(str(cause))[:2000],
                    "step": failed_step,
                }
                root.record_exception(exc)
                root.set_status(
                    Status(StatusCode.ERROR, redact_text(f"{type(cause).__name__}: {cause}")[:500])
                )
                where = f" in step {failed_step}" if failed_step else ""
                _logger.exception("pipeline %s failed%s", pipeline_name, where)
        finally:
            result["duration_seconds"] = round(time.time() - started, 3)
            capture.stop()
    telemetry.shutdown()  # flushes the run's spans and logs (or spools them) before the process ends
    result["exit_code"] = 0 if result["status"] == "succeeded" else 1
    result["finished_at"] = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    _write_result(env, result)
    return int(result["exit_code"])
