"""Any exporter wrapped in Pipetrace's resilience (retry, breaker, spool), and the OTLP ones built on it.

A pipeline run sending to the service, or the service forwarding to an external collector, keeps what
it could not send in its spool and delivers it once the receiver is back. Entry points
``pipetrace_otlp`` in the logs and traces exporter groups give the OTLP/HTTP exporter this resilience.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from exporters.base import ResilientExporter
from exporters.log_exporter import decode_log_batch, encode_log_batch
from exporters.otlp_spans import encode_spans
from exporters.settings import ExporterSettings
from exporters.span_exporter import decode_span_batch, encode_span_batch

# Our own retry and spool take over from the OTLP exporter's built-in retries, which would otherwise
# hold each failed batch for up to their timeout before we ever see the failure.
_FAST_FAIL_TIMEOUT = 5.0
_SETTING_NAMES = frozenset(ExporterSettings.model_fields) | {"path"}


def split_properties(properties: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our resilience settings, and the rest for the wrapped exporter."""
    ours = {k: v for k, v in properties.items() if k in _SETTING_NAMES}
    theirs = {k: v for k, v in properties.items() if k not in _SETTING_NAMES}
    return ours, theirs


class LosslessOTLPSpanExporter(OTLPSpanExporter):
    """The official OTLP/HTTP span exporter, sending spans encoded by
    :func:`exporters.otlp_spans.encode_spans`: a received span goes on as it came (flags, trace states,
    link details, dropped counts), the service's own as the SDK encodes them.

    Its ``export`` calls the SDK's encoder with no hook to replace it, so this one encodes and hands the
    bytes to the exporter's own client: the official transport (session, TLS, headers, compression,
    retries with Retry-After) is reused rather than a hand-written HTTP client.
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        result = self._client.export(encode_spans(spans).SerializeToString())
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE


class ResilientLogRecordExporter(ResilientExporter[ReadableLogRecord], LogRecordExporter):
    """Any ``LogRecordExporter`` with retry, breaker and spool around it."""

    signal = "logs"

    def __init__(self, inner: LogRecordExporter, settings: ExporterSettings, sink: str = "otlp") -> None:
        self.inner = inner
        self.sink = sink  # type: ignore[misc]  # per instance: names the spool folder
        super().__init__(settings)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        delivered = self.delivery.deliver(batch)
        return LogRecordExportResult.SUCCESS if delivered else LogRecordExportResult.FAILURE

    def send(self, batch: Sequence[ReadableLogRecord]) -> bool:
        ok = self.inner.export(batch) is LogRecordExportResult.SUCCESS
        if ok:
            self.counters.add_exported(len(batch), len(batch))
        return ok

    def encode(self, batch: Sequence[ReadableLogRecord]) -> bytes:
        return encode_log_batch(batch)

    def decode(self, payload: bytes) -> Sequence[ReadableLogRecord]:
        return decode_log_batch(payload)

    def shutdown(self) -> None:
        super().shutdown()
        self.inner.shutdown()


class ResilientSpanExporter(ResilientExporter[ReadableSpan], SpanExporter):
    """Any ``SpanExporter`` with retry, breaker and spool around it."""

    signal = "traces"

    def __init__(self, inner: SpanExporter, settings: ExporterSettings, sink: str = "otlp") -> None:
        self.inner = inner
        self.sink = sink  # type: ignore[misc]
        super().__init__(settings)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS if self.delivery.deliver(spans) else SpanExportResult.FAILURE

    def send(self, batch: Sequence[ReadableSpan]) -> bool:
        ok = self.inner.export(batch) is SpanExportResult.SUCCESS
        if ok:
            self.counters.add_exported(len(batch), len(batch))
        return ok

    def encode(self, batch: Sequence[ReadableSpan]) -> bytes:
        return encode_span_batch(batch)

    def decode(self, payload: bytes) -> Sequence[ReadableSpan]:
        return decode_span_batch(payload)

    def shutdown(self) -> None:
        super().shutdown()
        self.inner.shutdown()


class ResilientOTLPLogExporter(ResilientLogRecordExporter):
    """``OTLPLogExporter`` (its arguments pass through) with retry, breaker and spool."""

    def __init__(self, **properties: Any) -> None:
        ours, theirs = split_properties(properties)
        theirs.setdefault("timeout", _FAST_FAIL_TIMEOUT)
        super().__init__(OTLPLogExporter(**theirs), ExporterSettings.with_properties(**ours))


class ResilientOTLPSpanExporter(ResilientSpanExporter):
    """``OTLPSpanExporter`` (its arguments pass through) with retry, breaker and spool; lossless, so a
    span replayed from the spool (decoded as a received one) goes out as it was spooled."""

    def __init__(self, **properties: Any) -> None:
        ours, theirs = split_properties(properties)
        theirs.setdefault("timeout", _FAST_FAIL_TIMEOUT)
        super().__init__(LosslessOTLPSpanExporter(**theirs), ExporterSettings.with_properties(**ours))
