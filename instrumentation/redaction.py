"""Scrub secrets from log records before any exporter sees them.

One policy (``Redactor``), applied first: by a log processor ahead of every other, and by a wrapper
around every span exporter; for the service's own telemetry, for what it receives over OTLP and for
pipeline runs alike. It scrubs passwords in connection URLs, ``password=``/``token=``/``secret=``/``api_key=``
pairs, Authorization headers, AWS access key ids, JWTs and private keys in bodies and attribute values,
and the whole value of an attribute whose key names a secret. Hand-written rather than a library: the
patterns are the project's policy, and the common case (nothing to scrub) must cost one regex search.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from exporters.otlp_spans import ReceivedSpan

MASK = "***"

_SUBSTITUTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(@)"), rf"\g<1>{MASK}\g<2>"),
    # password=..., token: ..., "api_key": "..."
    (
        re.compile(
            r"""(?i)(\b(?:password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key|client[_-]?secret)"""
            r"""["']?\s*[=:]\s*["']?)[^\s"'&,;]+"""
        ),
        rf"\g<1>{MASK}",
    ),
    # Authorization: Bearer xyz / Basic xyz
    (
        re.compile(r"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token)?\s*)[^\s\"',;]+"),
        rf"\g<1>{MASK}",
    ),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), f"Bearer {MASK}"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"), MASK),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"), MASK),
)
# One cheap search decides whether any substitution can apply.
_ANY = re.compile(
    r"(?i)://[^\s:/@]+:[^\s@/]+@|password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key|authorization"
    r"|bearer|AKIA|ASIA|eyJ|PRIVATE KEY"
)
_SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|authorization|cookie|credential)")
# Attributes that merely mention such a word but hold no secret (counts, names of fields) are kept.
_ALLOWED_KEYS = frozenset({"exception.stacktrace", "exception.message", "exception.type"})


def redact_text(text: str) -> str:
    if not _ANY.search(text):
        return text
    for pattern, replacement in _SUBSTITUTIONS:
        text = pattern.sub(replacement, text)
    return text


class Redactor:
    """The redaction policy: built-in patterns, plus ``extra_patterns`` (each match is masked) and
    ``allowed_keys`` (attributes kept as they are, for values known to be safe)."""

    def __init__(self, extra_patterns: Iterable[str] = (), allowed_keys: Iterable[str] = ()) -> None:
        self._extra = [re.compile(pattern) for pattern in extra_patterns]
        self._allowed = frozenset(allowed_keys)
        # Attribute keys repeat from record to record: whether one names a secret is decided once.
        self._secret_keys: dict[str, bool] = {}

    def _is_secret_key(self, key: str) -> bool:
        known = self._secret_keys.get(key)
        if known is None:
            known = key not in self._allowed and key not in _ALLOWED_KEYS and bool(_SECRET_KEY.search(key))
            if len(self._secret_keys) < 10_000:
                self._secret_keys[key] = known
        return known

    def is_clean(self, body: Any, attributes: Mapping[str, Any] | None) -> bool:
        """True when nothing in a log record can need redacting: one regex search over all its text.

        The common case (nothing to scrub) then costs that search, not one per value and per key.
        """
        texts = []
        if isinstance(body, str):
            texts.append(body)
        elif body is not None and not isinstance(body, int | float | bool):
            return False  # structured bodies take the thorough path
        for key, value in (attributes or {}).items():
            if self._is_secret_key(key):
                return False
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, list | tuple):
                if not all(isinstance(item, str | int | float | bool) for item in value):
                    return False
                texts.extend(item for item in value if isinstance(item, str))
            elif not isinstance(value, int | float | bool | bytes):
                return False
        joined = "\x00".join(texts)
        return not _ANY.search(joined) and not any(pattern.search(joined) for pattern in self._extra)

    def text(self, text: str) -> str:
        text = redact_text(text)
        for pattern in self._extra:
            text = pattern.sub(MASK, text)
        return text

    def value(self, key: str, value: Any) -> Any:
        if key in self._allowed:
            return value
        if isinstance(value, str):
            if self._is_secret_key(key):
                return MASK
            return self.text(value)
        if isinstance(value, list | tuple):
            cleaned = [self.value(key, item) for item in value]
            return value if cleaned == list(value) else cleaned
        if isinstance(value, dict):
            return {k: self.value(k, v) for k, v in value.items()}
        return value

    def attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A redacted copy, or None when nothing in ``attributes`` needed redacting."""
        if not attributes:
            return None
        cleaned = {key: self.value(key, value) for key, value in attributes.items()}
        return cleaned if cleaned != dict(attributes) else None

    def span(self, span: ReadableSpan) -> ReadableSpan:
        """``span`` itself when it holds nothing to scrub, else a copy with attributes, event and link
        attributes and the status description redacted (a finished span cannot be changed in place)."""
        attributes = self.attributes(span.attributes)
        events = [(event, self.attributes(event.attributes)) for event in span.events]
        links = [(link, self.attributes(link.attributes)) for link in span.links]
        description = span.status.description
        clean_description = self.text(description) if description else description
        if (
            attributes is None
            and all(new is None for _, new in events)
            and all(new is None for _, new in links)
            and clean_description == description
        ):
            return span
        copy: dict[str, Any] = dict(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes if attributes is not None else span.attributes,
            events=[
                Event(event.name, new, event.timestamp) if new is not None else event for event, new in events
            ],
            links=[Link(link.context, new) if new is not None else link for link, new in links],
            kind=span.kind,
            status=Status(span.status.status_code, clean_description),
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )
        if isinstance(span, ReceivedSpan):
            # What the SDK's span cannot hold (flags, dropped counts, link details) goes along.
            return ReceivedSpan(span.otlp, **copy)
        return ReadableSpan(**copy)


DEFAULT_REDACTOR = Redactor()


def redact_value(key: str, value: Any) -> Any:
    return DEFAULT_REDACTOR.value(key, value)


class RedactionLogProcessor(LogRecordProcessor):
    """Rewrites bodies and attribute values in place, before the batch processors queue the record."""

    def __init__(self, redactor: Redactor = DEFAULT_REDACTOR) -> None:
        self.redactor = redactor

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        if self.redactor.is_clean(record.body, record.attributes):
            return
        if isinstance(record.body, str):
            record.body = self.redactor.text(record.body)
        elif isinstance(record.body, dict | list):
            record.body = self.redactor.value("body", record.body)
        attributes = record.attributes
        if attributes:
            for key in list(attributes):
                value = attributes[key]
                cleaned = self.redactor.value(key, value)
                if cleaned is not value and cleaned != value:
                    attributes[key] = cleaned  # type: ignore[index]

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
