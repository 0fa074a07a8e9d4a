"""The Flask application factory."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from re import Pattern
from typing import Any

from flask import Flask
from flask_cors import CORS
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from werkzeug.routing import PathConverter

from exporters.store import TelemetryStore
from exporters.store.pipelines import Pipeline, PipelineRepository
from exporters.store.queries import LogQueries
from instrumentation.config import plan_from_environment, plan_from_file
from instrumentation.flask import CORRELATION_HEADER, instrument_app
from instrumentation.metrics import observe_exporters
from instrumentation.telemetry import Batching, Telemetry
from service.alerts.service import alerts_of, build_alerts, install_alerts, stop_alerts
from service.auth import install_auth
from service.errors import register_error_handlers
from service.exposure import install_host_check, install_preflight_only_writes
from service.headers import install_security_headers
from service.periodic import Periodic
from service.retention import RetentionWorker
from service.routes import alerts, backup, health, logs, otlp, pipelines, services, traces, ui
from service.routes.pipelines import USER_CODE_TEMPLATE
from service.run_spool import RunSpoolDrain
from service.runner import RUN_SPOOL, RunManager
from service.scheduler import TICK_SECONDS, Scheduler, traced_start
from service.settings import Settings
from service.state import EXTENSION_KEY, ServiceState, state
from service.tail import tail_slots
from service.wiring import Wiring, wire

_logger = logging.getLogger(__name__)


class AnyTextConverter(PathConverter):
    """Like ``path``, but also matching line breaks, which Werkzeug's ``.`` does not: an id holding
    one reaches the route and gets a 400 naming it, not a bare 404 from the router."""

    regex = r"[^/][\s\S]*?"


def create_app(
    settings: Settings | None = None, *, metric_readers: Sequence[MetricReader] = (), **overrides: Any
) -> Flask:
    """Build a service: open the store, wire telemetry into it, mount the routes.

    ``overrides`` are settings fields, for tests and the CLI. Call :func:`close_app` when done.
    """
    if settings is None:
        settings = Settings(**overrides)
    elif overrides:
        settings = settings.model_copy(update=overrides)

    store = TelemetryStore.shared(settings.database, settings.exporter_settings().memory_limit)
    try:
        telemetry, wiring = _wire_telemetry(settings, store, metric_readers)
    except Exception:
        store.close()
        raise
    log_exporter, span_exporter = wiring.store_logs, wiring.store_spans
    assert log_exporter is not None and span_exporter is not None

    app = Flask(__name__)
    app.url_map.converters["any_text"] = AnyTextConverter
    app.json.sort_keys = False  # type: ignore[attr-defined]
    repository = PipelineRepository(store, settings.data_dir / "secrets")
    runs = RunManager(
        repository, settings.data_dir.resolve(), lambda: app.config.get("PIPETRACE_URL"),
        settings.max_concurrent_runs, ingest_token=settings.ingest_token_value,
        redactor=settings.redactor,
    )  # fmt: skip
    scheduler = Scheduler(
        repository,
        traced_start(
            runs.start, telemetry.tracer_provider.get_tracer(__name__), _scheduled_refusal(settings)
        ),
    )
    app.extensions[EXTENSION_KEY] = ServiceState(
        settings=settings,
        store=store,
        log_exporter=log_exporter,
        span_exporter=span_exporter,
        telemetry=telemetry,
        queries=LogQueries(store),
        repository=repository,
        forwarders=wiring.forwarders,
        ingest_slots=threading.BoundedSemaphore(settings.ingest_concurrency),
        tail_slots=tail_slots(settings.threads),
        runs=runs,
        scheduler=scheduler,
    )
    # Runs the last service left (finished meanwhile, still alive, or never started) are settled in
    # the background, once the store answers: see service.runner.
    state(app).runs.adopt_in_background()
    register_error_handlers(app)
    install_host_check(app, settings.trusted_hosts)  # first: a rebinding page learns nothing else
    install_auth(app, settings.api_token_value, settings.ingest_token_value)
    install_preflight_only_writes(app, settings.api_token_value)
    install_security_headers(app)
    _install_cors(app, settings)
    for blueprint in (
        alerts.blueprint,
        health.blueprint,
        logs.blueprint,
        otlp.blueprint,
        pipelines.blueprint,
        services.blueprint,
        traces.blueprint,
        ui.blueprint,
        backup.blueprint,
    ):
        app.register_blueprint(blueprint)
    instrument_app(
        app, telemetry.tracer_provider, request_logging=settings.enable_flask_logging,
        excluded_urls=settings.excluded_urls,
    )  # fmt: skip

    exporter_settings = settings.exporter_settings()
    drain = RunSpoolDrain(
        settings.data_dir.resolve() / RUN_SPOOL,
        telemetry,
        settings.receive_limits,
        exporter_settings.replay_interval_seconds,
        exporter_settings.fallback_max_files,
    )
    drain.start()
    app.extensions["pipetrace.run_spool"] = drain
    scheduler.tick()  # reads the schedules now when the store answers; a later tick does otherwise
    ticker = Periodic("scheduler", TICK_SECONDS, scheduler.tick)
    ticker.start()
    app.extensions["pipetrace.scheduler"] = ticker
    service = app.extensions[EXTENSION_KEY]
    install_alerts(
        app,
        build_alerts(settings, store, service.ingest_counters, lambda: app.config.get("PIPETRACE_URL")),
        settings.alert_interval_seconds,
    )
    alert_history_days = settings.alert_history_days or None
    if settings.log_retention_days is not None or alert_history_days is not None:
        worker = RetentionWorker(
            service.queries,
            settings.log_retention_days,
            settings.retention_interval_seconds,
            alerts_of(app).store,
            alert_history_days,
        )
        worker.start()
        app.extensions["pipetrace.retention"] = worker
    problem = service.unready_because()
    if problem is None:
        _logger.info("pipetrace ready: store %s (schema v%d)", store.path, store.schema_version)
    else:  # degraded, not stopped: it spools what arrives and recovers when the store does
        _logger.error("pipetrace started degraded, not ready: %s", problem)
    return app


def _scheduled_refusal(settings: Settings) -> Callable[[Pipeline], str | None]:
    """Why a scheduled run may not start now, as a request's run would be refused (403)."""

    def refusal(pipeline: Pipeline) -> str | None:
        if pipeline.template == USER_CODE_TEMPLATE and not settings.user_code_allowed:
            return f"the {USER_CODE_TEMPLATE} template runs code and user code is not allowed now"
        return None

    return refusal


def _install_cors(app: Flask, settings: Settings) -> None:
    """``ALLOW_ORIGINS`` for each prefix whose token is set: an origin given the API without a token
    could read every log and run code. ``pipetrace serve`` refuses that configuration outright."""
    resources: dict[str | Pattern[str], dict[str, Any]] = {
        pattern: {"origins": settings.cors_origins}
        for pattern, token in ((r"/api/*", settings.api_token_value), (r"/v1/*", settings.ingest_token_value))
        if token is not None and settings.cors_origins
    }
    if settings.cors_origins and len(resources) < 2:
        _logger.warning(
            "ALLOW_ORIGINS is set but not used for %s: CORS needs the prefix's token set",
            " and ".join(p for p in ("/api/*", "/v1/*") if p not in resources),
        )
    if resources:
        CORS(app, resources=resources, expose_headers=[CORRELATION_HEADER, "traceresponse"])


def _wire_telemetry(
    settings: Settings, store: TelemetryStore, metric_readers: Sequence[MetricReader]
) -> tuple[Telemetry, Wiring]:
    """Exporters from the configuration (file or env vars), then the providers that feed them."""
    plan = plan_from_file(settings.config_file) if settings.config_file else plan_from_environment(os.environ)
    batching = Batching(
        max_export_batch_size=settings.log_batch_size,
        max_queue_size=settings.log_queue_size,
        schedule_delay_millis=settings.log_schedule_delay_ms,
    )
    span_batching = Batching(schedule_delay_millis=settings.span_schedule_delay_ms)
    wiring = wire(
        plan,
        store,
        settings.exporter_settings(),
        batching,
        settings.otlp_endpoint,
        span_batching=span_batching,
    )
    # Whatever an earlier run spooled goes in before the service calls itself ready.
    for exporter in (wiring.store_logs, wiring.store_spans, *wiring.forwarders):
        if exporter is not None:
            exporter.delivery.replay()
    telemetry = Telemetry(
        resource=Resource.create({SERVICE_NAME: settings.service_name, **plan.resource}),
        log_exporters=wiring.logs,
        span_exporters=wiring.traces,
        batching=batching,
        metric_readers=[*metric_readers, *wiring.metric_readers],
        sampler=plan.sampler,
        export_own=not plan.disabled,
        redactor=settings.redactor,
    )
    observed = {"logs": wiring.store_logs, "traces": wiring.store_spans}
    observe_exporters(
        telemetry.meter_provider,
        {
            **{k: v for k, v in observed.items() if v is not None},
            **{e.delivery.name: e for e in wiring.forwarders},
        },
    )
    if not plan.disabled:
        telemetry.bridge_logging(settings.log_level)
    _logger.info("telemetry wired from %s", plan.source)
    return telemetry, wiring


def close_app(app: Flask) -> None:
    """Flush queued telemetry into the store, then close it."""
    stop_alerts(app)
    worker: RetentionWorker | None = app.extensions.pop("pipetrace.retention", None)
    if worker is not None:
        worker.stop()
    ticker: Periodic | None = app.extensions.pop("pipetrace.scheduler", None)
    if ticker is not None:
        ticker.stop()  # no scheduled run starts while the runs in flight are being stopped
    drain: RunSpoolDrain | None = app.extensions.pop("pipetrace.run_spool", None)
    if drain is not None:
        drain.stop()
    service = state(app)
    service.runs.shutdown()  # runs in flight keep running; the next start adopts them
    service.telemetry.shutdown()  # flushes the batch processors, then shuts the exporters down
    service.store.close()
