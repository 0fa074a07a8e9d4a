"""OpenTelemetry set-up for the service: resource, providers, processors and the logging bridge.

The providers are built per service instance, not taken from the global API, so that tests can run
several services in one process and so that received OTLP records can be fed through the same
processors and exporters as the service's own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from instrumentation.context import PipelineContextLogProcessor, PipelineContextSpanProcessor

_logger = logging.getLogger(__name__)


def service_resource(service_name: str) -> Resource:
    """The service's resource; ``OTEL_RESOURCE_ATTRIBUTES`` is merged in by the SDK."""
    return Resource.create({SERVICE_NAME: service_name})


@dataclass(frozen=True)
class Batching:
    """How the service's batch log processors group records for their exporters."""

    max_export_batch_size: int = 512
    max_queue_size: int = 2048
    schedule_delay_millis: int = 1000


@dataclass
class Telemetry:
    """The service's OpenTelemetry pipeline, from processors to exporters.

    ``log_processors`` are the synchronous ones (enrichment, and later redaction) that every record
    passes before any exporter sees it, whether the service logged it or received it over OTLP.
    """

    resource: Resource
    log_exporters: Sequence[LogRecordExporter]
    span_exporters: Sequence[SpanExporter]
    log_processors: Sequence[LogRecordProcessor] = field(
        default_factory=lambda: [PipelineContextLogProcessor()]
    )
    batching: Batching = field(default_factory=Batching)
    metric_readers: Sequence[MetricReader] = ()
    tracer_provider: TracerProvider = field(init=False)
    logger_provider: LoggerProvider = field(init=False)
    meter_provider: MeterProvider = field(init=False)
    _handler: LoggingHandler | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.tracer_provider = TracerProvider(resource=self.resource)
        self.tracer_provider.add_span_processor(PipelineContextSpanProcessor())
        for span_exporter in self.span_exporters:
            # The same schedule as logs (the SDK's span default is 5 s), so a trace shows up whole.
            self.tracer_provider.add_span_processor(
                BatchSpanProcessor(span_exporter, schedule_delay_millis=self.batching.schedule_delay_millis)
            )
        self.meter_provider = MeterProvider(resource=self.resource, metric_readers=list(self.metric_readers))
        self.logger_provider = LoggerProvider(resource=self.resource)
        for processor in self.log_processors:
            self.logger_provider.add_log_record_processor(processor)
        for log_exporter in self.log_exporters:
            self.logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(
                    log_exporter,
                    schedule_delay_millis=self.batching.schedule_delay_millis,
                    max_export_batch_size=self.batching.max_export_batch_size,
                    max_queue_size=max(self.batching.max_queue_size, self.batching.max_export_batch_size),
                )
            )

    def bridge_logging(self, level: str | int, logger: logging.Logger | None = None) -> None:
        """Send std ``logging`` records at ``level`` and above to OTel logs."""
        target = logger or logging.getLogger()
        target.setLevel(level)
        self._handler = LoggingHandler(level=logging.NOTSET, logger_provider=self.logger_provider)
        target.addHandler(self._handler)
        self._bridged = target

    def ingest_logs(self, records: Sequence[ReadWriteLogRecord]) -> bool:
        """Pass received records through the processors, then write them synchronously to every exporter.

        Returns True only when every exporter stored the batch, so an OTLP client is told the truth.
        """
        for record in records:
            for processor in self.log_processors:
                processor.on_emit(record)
        readable = [
            ReadableLogRecord(
                log_record=r.log_record,
                resource=r.resource if r.resource is not None else self.resource,
                instrumentation_scope=r.instrumentation_scope,
                limits=r.limits,
            )
            for r in records
        ]
        results = [exporter.export(readable) for exporter in self.log_exporters]
        return all(result is LogRecordExportResult.SUCCESS for result in results)

    def ingest_spans(self, spans: Sequence[ReadableSpan]) -> bool:
        results = [exporter.export(spans) for exporter in self.span_exporters]
        return all(result is SpanExportResult.SUCCESS for result in results)

    def force_flush(self) -> None:
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()

    def shutdown(self) -> None:
        if self._handler is not None:
            self._bridged.removeHandler(self._handler)
            self._handler = None
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()
