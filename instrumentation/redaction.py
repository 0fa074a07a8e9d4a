"""Scrub secrets from every text a record carries, before any exporter (store, spool, forwarder) sees it.

One policy (``Redactor``), applied first: by a log processor ahead of every other, and by a wrapper
around every span exporter; for the service's own telemetry, for what it receives over OTLP (HTTP and
gRPC both go through ``service/ingest.py``) and for pipeline runs alike. It covers log bodies, event
names, attribute keys and values of every type (strings, bytes, arrays, nested maps), span names, span
event names, link attributes, status messages, resources and instrumentation scopes. What counts as a
secret is ``instrumentation/secret_patterns.py``: masked where it sits in text, and the whole value of
an attribute whose key's last segment is a secret word. Run records' errors go through the same
:func:`redact_text` (``service/runner.py``, ``templates/runtime.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, Status

from exporters.otlp_codec import ReceivedResource, ReceivedScope
from exporters.otlp_spans import ReceivedSpan
from instrumentation.secret_patterns import MASK, is_secret_key, might_hold_secret, redact_text

__all__ = ["DEFAULT_REDACTOR", "MASK", "Redactor", "redact_text", "redact_value"]

# Resources and scopes are shared by many records: each distinct object is redacted once.
_CACHE_SIZE = 256


def _bytes_text(value: bytes) -> tuple[str, str]:
    """``value`` as text to search, and the codec that turns it back into the same bytes."""
    try:
        return value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return value.decode("latin-1"), "latin-1"  # one character per byte: binary stays binary


def _masked(value: Any) -> Any:
    """The value of a secret key: every leaf masked, the shape (list, map) kept, booleans kept."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, bytes):
        return MASK.encode()
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    return MASK


class Redactor:
    """The redaction policy: built-in patterns, plus ``extra_patterns`` (each match is masked) and
    ``allowed_keys`` (attributes kept as they are, for values known to be safe)."""

    def __init__(self, extra_patterns: Iterable[str] = (), allowed_keys: Iterable[str] = ()) -> None:
        self._extra = [re.compile(pattern) for pattern in extra_patterns]
        self._allowed = frozenset(allowed_keys)
        # Attribute keys repeat from record to record: whether one names a secret is decided once.
        self._secret_keys: dict[str, bool] = {}
        self._resources: dict[int, tuple[Resource, Resource]] = {}
        self._scopes: dict[int, tuple[InstrumentationScope, InstrumentationScope]] = {}

    def _is_secret_key(self, key: str) -> bool:
        known = self._secret_keys.get(key)
        if known is None:
            known = key not in self._allowed and is_secret_key(key)
            if len(self._secret_keys) < 10_000:
                self._secret_keys[key] = known
        return known

    def _might_hold_secret(self, text: str) -> bool:
        return might_hold_secret(text) or any(pattern.search(text) for pattern in self._extra)

    def is_clean(
        self, body: Any, attributes: Mapping[str, Any] | None, event_name: str | None = None
    ) -> bool:
        """True when nothing in a log record's body, attributes or event name can need redacting: one
        regex search over all its text. The common case then costs that search, not one per value."""
        texts = [event_name] if event_name else []
        if isinstance(body, str):
            texts.append(body)
        elif isinstance(body, bytes):
            texts.append(_bytes_text(body)[0])
        elif body is not None and not isinstance(body, int | float | bool):
            return False  # structured bodies take the thorough path
        for key, value in (attributes or {}).items():
            if key in self._allowed:
                continue
            if self._is_secret_key(key):
                return False
            texts.append(key)
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, bytes):
                texts.append(_bytes_text(value)[0])
            elif isinstance(value, list | tuple):
                if not all(isinstance(item, str | int | float | bool) for item in value):
                    return False
                texts.extend(item for item in value if isinstance(item, str))
            elif not isinstance(value, int | float | bool) and value is not None:
                return False
        return not self._might_hold_secret("\x00".join(texts))

    def text(self, text: str) -> str:
        cleaned = redact_text(text)
        for pattern in self._extra:
            cleaned = pattern.sub(MASK, cleaned)
        return text if cleaned == text else cleaned

    def key(self, key: str) -> str:
        """An attribute key as stored: a key can carry a secret too ("postgresql://u:pw@h")."""
        return key if key in self._allowed else self.text(key)

    def value(self, key: str, value: Any) -> Any:
        """``value`` of attribute ``key``, redacted; the same object when nothing changed."""
        if key in self._allowed:
            return value
        if self._is_secret_key(key):
            masked = _masked(value)
            return value if masked == value else masked
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            text, codec = _bytes_text(value)
            cleaned = self.text(text)
            return value if cleaned is text else cleaned.encode(codec, "replace")
        if isinstance(value, list | tuple):
            items = [self.value(key, item) for item in value]
            return value if all(new is old for new, old in zip(items, value, strict=True)) else items
        if isinstance(value, dict):
            cleaned_map = self.attributes(value)
            return value if cleaned_map is None else cleaned_map
        return value

    def attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A redacted copy (keys and values, in their order), or None when nothing needed redacting."""
        if not attributes:
            return None
        changed = False
        cleaned: dict[str, Any] = {}
        for key, value in attributes.items():
            new_key, new_value = self.key(key), self.value(key, value)
            changed = changed or new_key is not key or new_value is not value
            cleaned[new_key] = new_value
        return cleaned if changed else None

    def resource(self, resource: Resource) -> Resource:
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        attributes = self.attributes(resource.attributes)
        cleaned = resource
        if attributes is not None:
            if isinstance(resource, ReceivedResource):
                cleaned = ReceivedResource(attributes, resource.schema_url, resource.dropped_attributes_count)
            else:
                cleaned = Resource(attributes, resource.schema_url)
        if len(self._resources) >= _CACHE_SIZE:
            self._resources.clear()
        self._resources[id(resource)] = (resource, cleaned)
        return cleaned

    def scope(self, scope: InstrumentationScope | None) -> InstrumentationScope | None:
        if scope is None:
            return None
        cached = self._scopes.get(id(scope))
        if cached is not None and cached[0] is scope:
            return cached[1]
        name, version = self.text(scope.name), self.text(scope.version) if scope.version else scope.version
        attributes = self.attributes(scope.attributes)
        cleaned = scope
        if name is not scope.name or version is not scope.version or attributes is not None:
            kept = attributes if attributes is not None else scope.attributes
            if isinstance(scope, ReceivedScope):
                cleaned = ReceivedScope(
                    name,
                    version,
                    scope.schema_url,
                    dict(kept) if kept else None,
                    scope.dropped_attributes_count,
                )
            else:
                cleaned = InstrumentationScope(name, version, scope.schema_url, kept)
        if len(self._scopes) >= _CACHE_SIZE:
            self._scopes.clear()
        self._scopes[id(scope)] = (scope, cleaned)
        return cleaned

    def log_record(self, log_record: ReadWriteLogRecord) -> None:
        """Redact ``log_record`` in place: body, event name, attributes, its resource and scope."""
        if log_record.resource is not None:
            log_record.resource = self.resource(log_record.resource)
        log_record.instrumentation_scope = self.scope(log_record.instrumentation_scope)
        self._log_fields(log_record.log_record)

    def readable_log(self, readable: ReadableLogRecord) -> ReadableLogRecord:
        """A finished record (an exporter's input): its fields redacted in place, and a copy only when
        its resource or scope had to change (the readable record itself is frozen)."""
        self._log_fields(readable.log_record)
        resource, scope = self.resource(readable.resource), self.scope(readable.instrumentation_scope)
        if resource is readable.resource and scope is readable.instrumentation_scope:
            return readable
        return ReadableLogRecord(
            log_record=readable.log_record,
            resource=resource,
            instrumentation_scope=scope,
            limits=readable.limits,
        )

    def _log_fields(self, record: LogRecord) -> None:
        if self.is_clean(record.body, record.attributes, record.event_name):
            return
        if isinstance(record.body, str):
            record.body = self.text(record.body)
        elif isinstance(record.body, bytes | dict | list | tuple):
            record.body = self.value("body", record.body)
        if record.event_name:
            record.event_name = self.text(record.event_name)
        attributes = record.attributes
        cleaned = self.attributes(attributes)
        if attributes is not None and cleaned is not None:
            # Rewritten whole, in order: a key that changed must not move to the end.
            for key in list(attributes):
                del attributes[key]  # type: ignore[attr-defined]
            for key, value in cleaned.items():
                attributes[key] = value  # type: ignore[index]

    def span(self, span: ReadableSpan) -> ReadableSpan:
        """``span`` itself when it holds nothing to scrub, else a copy with its name, attributes, events
        (names and attributes), link attributes, status message, resource and scope redacted (a
        finished span cannot be changed in place)."""
        name = self.text(span.name)
        attributes = self.attributes(span.attributes)
        events = [(event, self.text(event.name), self.attributes(event.attributes)) for event in span.events]
        links = [(link, self.attributes(link.attributes)) for link in span.links]
        description = span.status.description
        clean_description = self.text(description) if description else description
        resource = self.resource(span.resource)
        scope = self.scope(span.instrumentation_scope)
        if (
            name is span.name
            and attributes is None
            and all(new_name is event.name and new is None for event, new_name, new in events)
            and all(new is None for _, new in links)
            and clean_description is description
            and resource is span.resource
            and scope is span.instrumentation_scope
        ):
            return span
        copy: dict[str, Any] = dict(
            name=name,
            context=span.context,
            parent=span.parent,
            resource=resource,
            attributes=attributes if attributes is not None else span.attributes,
            events=[
                event
                if new_name is event.name and new is None
                else Event(new_name, new if new is not None else event.attributes, event.timestamp)
                for event, new_name, new in events
            ],
            links=[Link(link.context, new) if new is not None else link for link, new in links],
            kind=span.kind,
            status=Status(span.status.status_code, clean_description),
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=scope,
        )
        if isinstance(span, ReceivedSpan):
            # What the SDK's span cannot hold (flags, dropped counts, link details) goes along.
            return ReceivedSpan(span.otlp, **copy)
        return ReadableSpan(**copy)


DEFAULT_REDACTOR = Redactor()


def redact_value(key: str, value: Any) -> Any:
    return DEFAULT_REDACTOR.value(key, value)


class RedactionLogProcessor(LogRecordProcessor):
    """Rewrites records in place, before the batch processors queue the record."""

    def __init__(self, redactor: Redactor = DEFAULT_REDACTOR) -> None:
        self.redactor = redactor

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.redactor.log_record(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class RedactingSpanExporter(SpanExporter):
    """Hands ``inner`` redacted spans: the span side of :class:`RedactionLogProcessor`."""

    def __init__(self, inner: SpanExporter, redactor: Redactor = DEFAULT_REDACTOR) -> None:
        self.inner = inner
        self.redactor = redactor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([self.redactor.span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def __getattr__(self, name: str) -> Any:
        # Counters, delivery and store of a wrapped DuckDB exporter stay reachable.
        return getattr(self.inner, name)
