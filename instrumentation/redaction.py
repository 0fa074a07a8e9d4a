"""Scrub secrets from log records before any exporter sees them.

One processor, first in the chain, for the service's own records, for records received over OTLP and
for pipeline runs alike: passwords in connection URLs, ``password=``/``token=``/``secret=``/``api_key=``
pairs, Authorization headers, AWS access key ids, JWTs and private keys in bodies and attribute values,
and the whole value of an attribute whose key names a secret. Hand-written rather than a library: the
patterns are the project's policy, and the common case (nothing to scrub) must cost one regex search.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

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


def redact_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if key not in _ALLOWED_KEYS and _SECRET_KEY.search(key):
            return MASK
        return redact_text(value)
    if isinstance(value, list | tuple):
        return [redact_value(key, item) for item in value]
    if isinstance(value, dict):
        return {k: redact_value(k, v) for k, v in value.items()}
    return value


class RedactionLogProcessor(LogRecordProcessor):
    """Rewrites bodies and attribute values in place, before the batch processors queue the record."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        self._extra = [re.compile(pattern) for pattern in extra_patterns]

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        if isinstance(record.body, str):
            record.body = self._text(record.body)
        elif isinstance(record.body, dict | list):
            record.body = redact_value("body", record.body)
        attributes = record.attributes
        if attributes:
            for key in list(attributes):
                value = attributes[key]
                cleaned = redact_value(key, value)
                if isinstance(cleaned, str):
                    cleaned = self._text(cleaned) if self._extra else cleaned
                if cleaned is not value and cleaned != value:
                    attributes[key] = cleaned  # type: ignore[index]

    def _text(self, text: str) -> str:
        text = redact_text(text)
        for pattern in self._extra:
            text = pattern.sub(MASK, text)
        return text

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
