"""OpenTelemetry set-up for the service: resource, providers, processors and the logging bridge.

The providers are built per service instance, not taken from the global API, so that tests can run
several services in one process and so that received OTLP records can be fed through the same
processors and exporters as the service's own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import Sampler

from instrumentation.context import PipelineContextLogProcessor, PipelineContextSpanProcessor
from instrumentation.redaction import DEFAULT_REDACTOR, RedactingSpanExporter, RedactionLogProcessor, Redactor

_logger = logging.getLogger(__name__)


def service_resource(service_name: str) -> Resource:
    """The service's resource; ``OTEL_RESOURCE_ATTRIBUTES`` is merged in by the SDK."""
    return Resource.create({SERVICE_NAME: service_name})


class ForwardingBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch span processor for the service's own spans (``on_end``, sampled check and all),
    and ``forward`` for spans the service received.

    A received span was recorded by its sender, whatever its sampled bit says (the official Python
    exporter never sets it: its flags are 0x100 or 0x300), so it must not meet ``on_end``'s check. The
    SDK has no public way to queue a span without it, hence its batch processor's ``emit``; a test
    (tests/exporters/test_otlp_spans.py) notices if that ever moves.
    """

    def forward(self, span: ReadableSpan) -> None:
        self._batch_processor.emit(span)


class ForwardingSimpleSpanProcessor(SimpleSpanProcessor):
    """The SDK's simple span processor, with ``forward`` for received spans (see above)."""

    def forward(self, span: ReadableSpan) -> None:
        try:
            self.span_exporter.export((span,))
        except Exception:  # as the SDK's on_end: a failed forward never fails ingest
            _logger.exception("could not forward a received span")


@dataclass(frozen=True)
class Batching:
    """How the service's batch log processors group records for their exporters."""

    max_export_batch_size: int = 512
    max_queue_size: int = 2048
    schedule_delay_millis: int = 1000


@dataclass(frozen=True)
class Export:
    """An exporter and how its processor feeds it: batched (with its own batching, or the default) or
    one record at a time (``simple``)."""

    exporter: Any
    batching: Batching | None = None
    simple: bool = False
    # Received records are written to an acknowledging exporter (the store) before the sender is
    # answered; the others (forwarders) get them through their processor's queue, so a collector that
    # is down never holds up ingest.
    acknowledges: bool = False


def _exports(items: Sequence[Any]) -> list[Export]:
    return [item if isinstance(item, Export) else Export(item, acknowledges=True) for item in items]


class ExcludeLoggers(logging.Filter):
    """Refuses the records of the named loggers and of their children."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        self._names = tuple(names)

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(record.name == name or record.name.startswith(f"{name}.") for name in self._names)


@dataclass
class Telemetry:
    """The service's OpenTelemetry pipeline, from processors to exporters.

    ``log_processors`` are the synchronous ones (enrichment) that every record passes before any
    exporter sees it, whether the service logged it or received it over OTLP. ``redactor`` comes
    before all of them, and before every span exporter: no exporter sees a secret.
    """

    resource: Resource
    log_exporters: Sequence[LogRecordExporter | Export]
    span_exporters: Sequence[SpanExporter | Export]
    log_processors: Sequence[LogRecordProcessor] = field(
        default_factory=lambda: [PipelineContextLogProcessor()]
    )
    redactor: Redactor = field(default_factory=lambda: DEFAULT_REDACTOR)
    batching: Batching = field(default_factory=Batching)
    metric_readers: Sequence[MetricReader] = ()
    sampler: Sampler | None = None
    # False (OTEL_SDK_DISABLED): the service's own logs and spans are dropped; received ones still go.
    export_own: bool = True
    tracer_provider: TracerProvider = field(init=False)
    logger_provider: LoggerProvider = field(init=False)
    meter_provider: MeterProvider = field(init=False)
    _handler: LoggingHandler | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._forward_span_processors: list[ForwardingBatchSpanProcessor | ForwardingSimpleSpanProcessor] = []
        self._forward_log_processors: list[Any] = []
        self.tracer_provider = TracerProvider(resource=self.resource, sampler=self.sampler)
        self.tracer_provider.add_span_processor(PipelineContextSpanProcessor())
        for export in _exports(self.span_exporters) if self.export_own else []:
            batching = export.batching or self.batching
            # The same schedule as logs (the SDK's span default is 5 s), so a trace shows up whole.
            exporter = RedactingSpanExporter(export.exporter, self.redactor)
            span_processor = (
                ForwardingSimpleSpanProcessor(exporter)
                if export.simple
                else ForwardingBatchSpanProcessor(
                    exporter, schedule_delay_millis=batching.schedule_delay_millis
                )
            )
            self.tracer_provider.add_span_processor(span_processor)
            if not export.acknowledges:
                self._forward_span_processors.append(span_processor)
        self.meter_provider = MeterProvider(resource=self.resource, metric_readers=list(self.metric_readers))
        self.logger_provider = LoggerProvider(resource=self.resource)
        self._processors = [RedactionLogProcessor(self.redactor), *self.log_processors]
        for processor in self._processors:
            self.logger_provider.add_log_record_processor(processor)
        for export in _exports(self.log_exporters) if self.export_own else []:
            batching = export.batching or self.batching
            log_processor = (
                SimpleLogRecordProcessor(export.exporter)
                if export.simple
                else BatchLogRecordProcessor(
                    export.exporter,
                    schedule_delay_millis=batching.schedule_delay_millis,
                    max_export_batch_size=batching.max_export_batch_size,
                    max_queue_size=max(batching.max_queue_size, batching.max_export_batch_size),
                )
            )
            self.logger_provider.add_log_record_processor(log_processor)
            if not export.acknowledges:
                self._forward_log_processors.append(log_processor)

    def bridge_logging(
        self, level: str | int, logger: logging.Logger | None = None, *, exclude: Sequence[str] = ()
    ) -> None:
        """Send std ``logging`` records at ``level`` and above to OTel logs, except those of the loggers
        named in ``exclude`` (and their children)."""
        target = logger or logging.getLogger()
        target.setLevel(level)
        self._handler = LoggingHandler(level=logging.NOTSET, logger_provider=self.logger_provider)
        if exclude:
            self._handler.addFilter(ExcludeLoggers(exclude))
        target.addHandler(self._handler)
        self._bridged = target

    def ingest_logs(self, records: Sequence[ReadWriteLogRecord]) -> bool:
        """Pass received records through the processors, write them to the acknowledging exporters,
        and queue them for the forwarding ones.

        Returns True only when every acknowledging exporter stored the batch, so an OTLP client is told
        the truth; forwarders deliver later, with their own retry and spool.
        """
        for record in records:
            for processor in self._processors:
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
        exports = _exports(self.log_exporters)
        results = [export.exporter.export(readable) for export in exports if export.acknowledges]
        for processor in self._forward_log_processors:
            for record in records:
                processor.on_emit(record)
        return all(result is LogRecordExportResult.SUCCESS for result in results)

    def ingest_spans(self, spans: Sequence[ReadableSpan]) -> bool:
        """Store received spans, then queue every one of them for the forwarders (sampled bit or not)."""
        spans = [self.redactor.span(span) for span in spans]
        exports = _exports(self.span_exporters)
        results = [export.exporter.export(spans) for export in exports if export.acknowledges]
        for processor in self._forward_span_processors:
            for span in spans:
                processor.forward(span)
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
