"""What the service's telemetry is wired to: a plan read from ``otel-config.yaml`` or ``OTEL_*`` env vars.

The file is parsed and schema-checked by the OpenTelemetry SDK's own declarative-configuration loader;
this module adds what that loader leaves to the SDK at run time (an exporter name that exists, its
properties) so that a broken configuration stops start-up with the file, the key and the problem, and
``pipetrace config check`` can say the same without starting anything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.util._importlib_metadata import entry_points

# Exporters the configuration schema names itself; any other name is an entry point.
BUILT_IN = ("otlp_http", "otlp_grpc", "console")
GROUPS = {"logs": "opentelemetry_logs_exporter", "traces": "opentelemetry_traces_exporter",
          "metrics": "opentelemetry_metrics_exporter"}  # fmt: skip


class ConfigError(ValueError):
    """A configuration that cannot be used; says where (file and key) and what is wrong."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.source, self.key, self.problem = source, key, problem


@dataclass(frozen=True)
class ExporterPlan:
    name: str
    properties: dict[str, Any]
    processor: str = "batch"  # batch or simple; for metrics, a periodic reader
    options: dict[str, Any] = field(default_factory=dict)  # batch / reader options from the file

    def describe(self) -> str:
        if self.name in ("otlp_http", "otlp_grpc") and not self.properties.get("endpoint"):
            return f"{self.processor} -> {self.name} (off: no endpoint; set OTEL_EXPORTER_OTLP_ENDPOINT)"
        shown = {k: v for k, v in self.properties.items() if k not in ("headers", "password", "token")}
        return f"{self.processor} -> {self.name} {shown}" if shown else f"{self.processor} -> {self.name}"


@dataclass(frozen=True)
class TelemetryPlan:
    source: str
    resource: dict[str, Any]
    sampler: Any  # an SDK sampler, or None for the SDK's default (OTEL_TRACES_SAMPLER)
    logs: list[ExporterPlan]
    traces: list[ExporterPlan]
    metrics: list[ExporterPlan]
    disabled: bool = False

    def describe(self) -> str:
        lines = [
            f"configuration from {self.source}",
            f"resource: {self.resource or '(from the environment)'}",
            "sampler: "
            + (type(self.sampler).__name__ if self.sampler else "the SDK default (OTEL_TRACES_SAMPLER)"),
        ]
        for signal in ("logs", "traces", "metrics"):
            plans: list[ExporterPlan] = getattr(self, signal)
            lines.append(f"{signal}: " + ("; ".join(p.describe() for p in plans) if plans else "(none)"))
        if self.disabled:
            lines.append("the SDK is disabled: the service keeps none of its own telemetry")
        return "\n".join(lines)  # fmt: skip


def _known(signal: str, name: str) -> bool:
    return name in BUILT_IN or any(ep.name == name for ep in entry_points(group=GROUPS[signal]))


def _exporter(source: str, key: str, signal: str, model: Any) -> tuple[str, dict[str, Any]]:
    """The one exporter a processor names: (name, properties)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for name in BUILT_IN:
        value = getattr(model, name, None)
        if value is not None:
            properties = {k: v for k, v in vars(value).items() if v is not None and not k.startswith("_")}
            found.append((name, properties))
    for name, properties in (getattr(model, "additional_properties", None) or {}).items():
        if not _known(signal, name):
            raise ConfigError(
                source,
                f"{key}.{name}",
                f"unknown exporter {name!r}; installed: "
                f"{', '.join(sorted({*BUILT_IN, *(ep.name for ep in entry_points(group=GROUPS[signal]))}))}",
            )
        if properties is not None and not isinstance(properties, Mapping):
            raise ConfigError(source, f"{key}.{name}", "properties must be a mapping")
        found.append((name, dict(properties or {})))
    if len(found) != 1:
        raise ConfigError(source, key, f"needs exactly one exporter, found {len(found)}")
    return found[0]


def _check_properties(source: str, key: str, name: str, properties: dict[str, Any]) -> None:
    """Our own exporters validate their properties now, not at the first export."""
    if name not in ("duckdb", "pipetrace_otlp"):
        return
    from pydantic import ValidationError

    from exporters.settings import ExporterSettings

    ours = {k: v for k, v in properties.items() if k in ExporterSettings.model_fields or k == "path"}
    if name == "duckdb":
        ours = properties
    try:
        ExporterSettings.with_properties(**ours)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(
            source, f"{key}.{name}.{'.'.join(str(p) for p in error['loc'])}", error["msg"]
        ) from exc


def _sampler(source: str, model: Any) -> Any:
    if model is None:
        return None
    from opentelemetry.sdk.trace import sampling

    if getattr(model, "always_on", None) is not None:
        return sampling.ALWAYS_ON
    if getattr(model, "always_off", None) is not None:
        return sampling.ALWAYS_OFF
    ratio = getattr(model, "trace_id_ratio_based", None)
    if ratio is not None:
        return sampling.TraceIdRatioBased(ratio.ratio if ratio.ratio is not None else 1.0)
    parent = getattr(model, "parent_based", None)
    if parent is not None:
        root = _sampler(source, parent.root) if parent.root is not None else sampling.ALWAYS_ON
        return sampling.ParentBased(root)
    raise ConfigError(source, "tracer_provider.sampler", "supported samplers: always_on, always_off, "
                      "trace_id_ratio_based, parent_based")  # fmt: skip


def _processors(source: str, signal: str, key: str, processors: Any) -> list[ExporterPlan]:
    plans = []
    for index, processor in enumerate(processors or []):
        here = f"{key}.processors[{index}]"
        kind = "batch" if getattr(processor, "batch", None) is not None else "simple"
        body = getattr(processor, kind, None)
        if body is None:
            raise ConfigError(source, here, "only batch and simple processors are supported")
        name, properties = _exporter(source, f"{here}.{kind}.exporter", signal, body.exporter)
        _check_properties(source, f"{here}.{kind}.exporter", name, properties)
        options = {
            k: v for k, v in vars(body).items() if k != "exporter" and v is not None and not k.startswith("_")
        }
        plans.append(ExporterPlan(name, properties, kind, options))
    return plans


def _readers(source: str, readers: Any) -> list[ExporterPlan]:
    plans = []
    for index, reader in enumerate(readers or []):
        periodic = getattr(reader, "periodic", None)
        here = f"meter_provider.readers[{index}]"
        if periodic is None:
            raise ConfigError(source, here, "only periodic readers are supported")
        name, properties = _exporter(source, f"{here}.periodic.exporter", "metrics", periodic.exporter)
        options = {k: v for k, v in vars(periodic).items() if k in ("interval", "timeout") and v is not None}
        plans.append(ExporterPlan(name, properties, "periodic", options))
    return plans


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Drop the loader's own records while it runs: it logs each error (with a traceback) that it
    then raises, and the ConfigError made from it already says the same in one line."""
    logger.addFilter(_drop)
    try:
        yield
    finally:
        logger.removeFilter(_drop)


def _drop(record: logging.LogRecord) -> bool:
    return False


def plan_from_file(path: str | Path) -> TelemetryPlan:
    from opentelemetry.configuration import load_config_file

    source = str(path)
    if not Path(path).is_file():
        raise ConfigError(source, "(file)", "no such file")
    try:
        with _quiet(logging.getLogger("opentelemetry.configuration.file._loader")):
            config = load_config_file(source)
    except Exception as exc:  # the loader raises its own errors, YAML's and I/O's: all mean "unusable"
        message = " ".join(str(exc).split())
        key = message.split("(at ", 1)[1].rstrip(")").replace(" -> ", ".") if "(at " in message else "(file)"
        raise ConfigError(source, key, message[:500]) from exc
    resource: dict[str, Any] = {}
    for attribute in getattr(config.resource, "attributes", None) or []:
        resource[attribute.name] = attribute.value
    tracer, logger, meter = config.tracer_provider, config.logger_provider, config.meter_provider
    return TelemetryPlan(
        source=source,
        resource=resource,
        sampler=_sampler(source, getattr(tracer, "sampler", None)),
        logs=_processors(source, "logs", "logger_provider", getattr(logger, "processors", None)),
        traces=_processors(source, "traces", "tracer_provider", getattr(tracer, "processors", None)),
        metrics=_readers(source, getattr(meter, "readers", None)),
        disabled=bool(getattr(config, "disabled", False)),
    )


def _names(value: str | None, default: str) -> list[str]:
    names = [name.strip() for name in (value or default).split(",") if name.strip()]
    return [] if names == ["none"] else names


def plan_from_environment(env: Mapping[str, str]) -> TelemetryPlan:
    """The standard OTel env vars. The DuckDB store is always wired (the log routes read it); the
    exporters ``OTEL_LOGS_EXPORTER`` and ``OTEL_TRACES_EXPORTER`` name are added beside it, and with
    none named, ``OTEL_EXPORTER_OTLP_ENDPOINT`` alone switches OTLP forwarding on."""
    source = "environment"
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    otlp = "otlp_grpc" if protocol == "grpc" else "otlp_http"
    if protocol not in ("grpc", "http/protobuf"):
        raise ConfigError(source, "OTEL_EXPORTER_OTLP_PROTOCOL", f"{protocol!r} is not grpc or http/protobuf")
    forward = f"duckdb,{otlp}" if endpoint else "duckdb"

    def signal(name: str, variable: str, default: str) -> list[ExporterPlan]:
        plans = [] if name == "metrics" else [ExporterPlan("duckdb", {})]
        for exporter in _names(env.get(variable), default):
            if exporter == "duckdb" and name != "metrics":
                continue
            exporter = otlp if exporter == "otlp" else exporter
            if not _known(name, exporter):
                raise ConfigError(source, variable, f"unknown exporter {exporter!r}")
            plans.append(ExporterPlan(exporter, {}, "periodic" if name == "metrics" else "batch"))
        return plans

    return TelemetryPlan(
        source=source,
        resource={},
        sampler=None,
        logs=signal("logs", "OTEL_LOGS_EXPORTER", forward),
        traces=signal("traces", "OTEL_TRACES_EXPORTER", forward),
        metrics=signal("metrics", "OTEL_METRICS_EXPORTER", otlp if endpoint else "none"),
        disabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true",
    )
