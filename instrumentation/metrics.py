"""The exporters' own health as OpenTelemetry metrics: record counts by outcome, spool size, breaker."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from exporters.base import ResilientExporter
from exporters.breaker import BreakerState
from exporters.counters import COUNTERS


def observe_exporters(meter_provider: MeterProvider, exporters: Mapping[str, ResilientExporter[Any]]) -> None:
    """Register observable instruments that read each exporter's status when metrics are collected."""
    meter = meter_provider.get_meter("pipetrace.ingest")

    def records(options: CallbackOptions) -> Iterable[Observation]:
        for signal, exporter in exporters.items():
            counts = exporter.counters.snapshot()
            for outcome in COUNTERS:
                yield Observation(counts[outcome], {"signal": signal, "outcome": outcome})

    def spool(options: CallbackOptions) -> Iterable[Observation]:
        for signal, exporter in exporters.items():
            status = exporter.delivery.spool.status() if exporter.delivery.spool is not None else None
            yield Observation(status["records"] if status else 0, {"signal": signal})

    def breaker(options: CallbackOptions) -> Iterable[Observation]:
        for signal, exporter in exporters.items():
            current = exporter.delivery.breaker.state
            for state in BreakerState:
                yield Observation(int(state is current), {"signal": signal, "state": state.value})

    meter.create_observable_counter(
        "pipetrace.ingest.records", [records], unit="{record}", description="Records by outcome of delivery."
    )
    meter.create_observable_gauge(
        "pipetrace.ingest.spool.records",
        [spool],
        unit="{record}",
        description="Records waiting in the spool.",
    )
    meter.create_observable_gauge(
        "pipetrace.ingest.breaker.state", [breaker], description="1 for the circuit breaker's current state."
    )
