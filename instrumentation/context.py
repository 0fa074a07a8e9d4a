"""Pipeline context: which pipeline, run and stage the current code works for.

Set it with :func:`pipeline_context`; the processors below copy it onto every log record and span
started inside, as the attributes ``pipeline.id``, ``pipeline.run_id`` and ``pipeline.stage``, which the
store promotes to columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from exporters.records import PIPELINE_ID, RUN_ID, STAGE

_EMPTY: Mapping[str, str] = MappingProxyType({})
_current: ContextVar[Mapping[str, str]] = ContextVar("pipetrace_pipeline_context", default=_EMPTY)


@contextmanager
def pipeline_context(
    pipeline_id: str | None = None, run_id: str | None = None, stage: str | None = None
) -> Iterator[Mapping[str, str]]:
    """Tag everything logged or traced inside the block; unset arguments keep the outer value."""
    merged = dict(_current.get())
    for key, value in ((PIPELINE_ID, pipeline_id), (RUN_ID, run_id), (STAGE, stage)):
        if value is not None:
            merged[key] = value
    token = _current.set(MappingProxyType(merged))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def current_pipeline_context() -> Mapping[str, str]:
    return _current.get()


class PipelineContextLogProcessor(LogRecordProcessor):
    """Adds the current pipeline context to log records; attributes the caller set win."""

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        context = _current.get()
        if not context:
            return
        attributes = log_record.log_record.attributes
        if attributes is None:
            return
        for key, value in context.items():
            if key not in attributes:
                attributes[key] = value  # type: ignore[index]

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class PipelineContextSpanProcessor(SpanProcessor):
    """Adds the current pipeline context to spans as they start."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for key, value in _current.get().items():
            if span.attributes is None or key not in span.attributes:
                span.set_attribute(key, value)

    def on_end(self, span: ReadableSpan) -> None:
        pass
