"""Build the service's exporters from a telemetry plan (``otel-config.yaml`` or ``OTEL_*`` env vars).

``duckdb`` is bound to the service's own store (the plan's ``path`` is the service's database, set by
its data folder). Every exporter that sends telemetry out of the process (OTLP over HTTP or gRPC, and
any other entry point) is wrapped in the same retry, breaker and spool as the store's. An OTLP exporter
whose endpoint is empty is left out: that is how ``otel-config.yaml`` switches forwarding on only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

from exporters.log_exporter import DuckDBLogRecordExporter
from exporters.otlp_exporter import (
    LosslessOTLPSpanExporter,
    ResilientLogRecordExporter,
    ResilientSpanExporter,
    split_properties,
)
from exporters.settings import ExporterSettings
from exporters.span_exporter import DuckDBSpanExporter
from exporters.store import TelemetryStore
from instrumentation.config import GROUPS, ConfigError, ExporterPlan, TelemetryPlan
from instrumentation.telemetry import Batching, Export

_SIGNAL_PATHS = {"logs": "/v1/logs", "traces": "/v1/traces", "metrics": "/v1/metrics"}


@dataclass
class Wiring:
    logs: list[Export] = field(default_factory=list)
    traces: list[Export] = field(default_factory=list)
    metric_readers: list[MetricReader] = field(default_factory=list)
    store_logs: DuckDBLogRecordExporter | None = None
    store_spans: DuckDBSpanExporter | None = None
    forwarders: list[Any] = field(default_factory=list)  # resilient exporters that send elsewhere


def _batching(plan: ExporterPlan, default: Batching) -> Batching:
    """The file's batch options, else the service's settings for that signal."""
    options = plan.options
    return Batching(
        max_export_batch_size=int(options.get("max_export_batch_size", default.max_export_batch_size)),
        max_queue_size=int(options.get("max_queue_size", default.max_queue_size)),
        schedule_delay_millis=int(options.get("schedule_delay", default.schedule_delay_millis)),
    )


def _endpoint(signal: str, properties: dict[str, Any], protocol: str) -> str | None:
    endpoint = str(properties.get("endpoint") or "").strip()
    if not endpoint:
        return None
    if protocol == "http" and urlparse(endpoint).path in ("", "/"):
        # A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: the signal's path goes after it.
        endpoint = endpoint.rstrip("/") + _SIGNAL_PATHS[signal]
    return endpoint


def _otlp(signal: str, name: str, properties: dict[str, Any], env_endpoint: str | None) -> Any | None:
    protocol = "grpc" if name == "otlp_grpc" else "http"
    if "endpoint" not in properties and env_endpoint:
        properties = {**properties, "endpoint": env_endpoint}
    endpoint = _endpoint(signal, properties, protocol)
    if endpoint is None:
        return None  # forwarding is off
    options: dict[str, Any] = {"endpoint": endpoint}
    if properties.get("headers"):
        headers = properties["headers"]
        options["headers"] = (
            {h["name"]: h["value"] for h in headers} if isinstance(headers, list) else headers
        )
    if properties.get("timeout"):
        options["timeout"] = float(properties["timeout"]) / 1000  # the file gives milliseconds
    if protocol == "grpc":
        options["insecure"] = endpoint.startswith("http://")
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics

        from exporters.otlp_grpc import LosslessGrpcLogExporter as GrpcLogs  # logs and spans go out
        from exporters.otlp_grpc import LosslessGrpcSpanExporter as GrpcSpans  # as received, lossless

        return {"logs": GrpcLogs, "traces": GrpcSpans, "metrics": GrpcMetrics}[signal](**options)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    from exporters.otlp_logs import LosslessOTLPLogExporter as OTLPLogExporter  # logs go out lossless

    options.setdefault("timeout", 5.0)
    spans = LosslessOTLPSpanExporter  # a received span goes out as it came (exporters.otlp_spans)
    http_classes = {"logs": OTLPLogExporter, "traces": spans, "metrics": OTLPMetricExporter}
    return http_classes[signal](**options)


def _entry_point(signal: str, name: str, properties: dict[str, Any]) -> Any:
    from opentelemetry.util._importlib_metadata import entry_points

    for point in entry_points(group=GROUPS[signal], name=name):
        return point.load()(**properties)
    raise ConfigError("configuration", name, f"unknown {signal} exporter")


def wire(
    plan: TelemetryPlan,
    store: TelemetryStore,
    settings: ExporterSettings,
    batching: Batching,
    env_endpoint: str | None = None,
    span_batching: Batching | None = None,
) -> Wiring:
    wiring = Wiring()
    for signal in ("logs", "traces"):
        exports: list[Export] = getattr(wiring, signal)
        for plan_item in getattr(plan, signal):
            name, properties = plan_item.name, dict(plan_item.properties)
            ours, theirs = split_properties(properties)
            given = set(ours) - {"path"}  # the service's database is its own, whatever path says
            local_settings = settings.model_copy(
                update=ExporterSettings.with_properties(**{k: ours[k] for k in given}).model_dump(
                    include=given
                )
            )
            exporter: Any
            if name == "duckdb" and signal == "logs":
                exporter = wiring.store_logs = DuckDBLogRecordExporter(store=store, settings=local_settings)
            elif name == "duckdb":
                exporter = wiring.store_spans = DuckDBSpanExporter(store=store, settings=local_settings)
            else:
                otlp = name in ("otlp_http", "otlp_grpc")
                inner = (
                    _otlp(signal, name, theirs, env_endpoint) if otlp else _entry_point(signal, name, theirs)
                )
                if inner is None:
                    continue
                wrapper = ResilientLogRecordExporter if signal == "logs" else ResilientSpanExporter
                exporter = wrapper(inner, local_settings, sink=name)
                wiring.forwarders.append(exporter)
            simple = plan_item.processor == "simple"
            default = batching if signal == "logs" else (span_batching or batching)
            exports.append(
                Export(exporter, _batching(plan_item, default), simple=simple, acknowledges=name == "duckdb")
            )
    for plan_item in plan.metrics:
        if plan_item.name in ("otlp_http", "otlp_grpc"):
            metric_exporter = _otlp("metrics", plan_item.name, dict(plan_item.properties), env_endpoint)
        else:
            metric_exporter = _entry_point("metrics", plan_item.name, dict(plan_item.properties))
        if metric_exporter is not None:
            interval = plan_item.options.get("interval")
            wiring.metric_readers.append(
                PeriodicExportingMetricReader(metric_exporter, export_interval_millis=interval)
                if interval else PeriodicExportingMetricReader(metric_exporter)
            )  # fmt: skip
    if wiring.store_logs is None or wiring.store_spans is None:
        # The store is what the log routes read: without it the service would answer from nothing.
        raise ConfigError(plan.source, "logger_provider / tracer_provider",
                          "the duckdb exporter must be wired for both logs and traces")  # fmt: skip
    return wiring
