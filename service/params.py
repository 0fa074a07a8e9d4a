"""Parsing and validation of query parameters. Every failure names its parameter (a 400, never a 500)."""

from __future__ import annotations

import base64
import binascii
import functools
import re
import time
from calendar import timegm
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from service.errors import bad_parameter

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_ID_LENGTH = 256

# OpenTelemetry severity numbers: each level spans four numbers starting here.
LEVELS: dict[str, int] = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
_LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL"}

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
_RELATIVE = re.compile(r"^(\d{1,9})(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
NS = 1_000_000_000
# Stored times are nanoseconds since 1970 in 64 bits: 1970-01-01 up to 2262-04-11T23:47:16.854775806Z
# (2**63 - 1 is DuckDB's "infinity", not a time).
MAX_TIME_NS = 2**63 - 2
# Whole numbers in ASCII only: str.isdigit() also accepts "²" and other digits int() refuses.
_WHOLE_NUMBER = re.compile(r"^[0-9]{1,9}$")


def parse_time(parameter: str, value: str, now_ns: int | None = None) -> int:
    """RFC 3339 (nanoseconds kept) or a duration before now such as ``15m``, ``24h``, ``7d``; as epoch ns."""
    value = value.strip()
    relative = _RELATIVE.match(value)
    if relative:
        now = time.time_ns() if now_ns is None else now_ns
        # A duration reaching back before 1970 means "from the beginning".
        return max(0, now - int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)] * NS)
    match = _RFC3339.match(value)
    if not match:
        raise bad_parameter(
            parameter,
            f"{value!r} is not an RFC 3339 time (2026-01-31T12:00:00Z) or a duration (15m, 24h, 7d)",
        )
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        seconds = timegm((int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0))
        _validate_date(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError as exc:
        raise bad_parameter(parameter, f"{value!r} is not a valid time: {exc}") from exc
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    nanos = int((fraction or "").ljust(9, "0") or 0)
    result = seconds * NS + nanos
    if not 0 <= result <= MAX_TIME_NS:
        raise bad_parameter(parameter, f"{value!r} is outside the stored range 1970-01-01 to 2262-04-11")
    return result


def _validate_date(year: int, month: int, day: int, hour: int, minute: int, second: int) -> None:
    import datetime

    datetime.datetime(year, month, day, hour, minute, min(second, 59))


def format_time(ns: int | None) -> str | None:
    """RFC 3339 in UTC with nanosecond precision."""
    if ns is None:
        return None
    seconds, nanos = divmod(ns, NS)
    return f"{_utc_second(seconds)}.{nanos:09d}Z"


@functools.lru_cache(maxsize=4096)
def _utc_second(seconds: int) -> str:
    """A page's records share seconds (and a record its times): each is formatted once."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def parse_limit(value: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if value is None:
        return default
    if not _WHOLE_NUMBER.match(value.strip()):
        raise bad_parameter("limit", f"{value!r} is not a whole number from 1 to {maximum}")
    limit = int(value)
    if not 1 <= limit <= maximum:
        raise bad_parameter("limit", f"{limit} is outside 1..{maximum}")
    return limit


def parse_level(value: str) -> int:
    """A minimum level by name (``WARN`` means WARN, ERROR and FATAL) or a severity number 1..24."""
    name = value.strip().upper()
    name = _LEVEL_ALIASES.get(name, name)
    if name in LEVELS:
        return LEVELS[name]
    if _WHOLE_NUMBER.match(name) and 1 <= int(name) <= 24:
        return int(name)
    raise bad_parameter("level", f"{value!r} is not one of {', '.join(LEVELS)} or a number 1..24")


def level_name(severity_number: int | None) -> str:
    if not severity_number or severity_number < 1:  # OTLP allows numbers outside 1..24
        return "UNSPECIFIED"
    names = list(LEVELS)
    return names[min((severity_number - 1) // 4, len(names) - 1)]


def parse_identifier(parameter: str, value: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH:
        raise bad_parameter(parameter, f"must be 1..{MAX_ID_LENGTH} characters")
    if any(ord(ch) < 32 for ch in value):
        raise bad_parameter(parameter, "must not contain control characters")
    return value


def parse_trace_id(value: str) -> str:
    trace_id = value.strip().lower()
    if not _TRACE_ID.match(trace_id) or trace_id == "0" * 32:
        raise bad_parameter("trace_id", f"{value!r} is not a trace id of 32 hex characters")
    return trace_id


@dataclass(frozen=True)
class Cursor:
    """Where a newest-first page ended: the last row's timestamp and id."""

    timestamp_ns: int
    record_id: int

    def encode(self) -> str:
        raw = orjson.dumps([self.timestamp_ns, self.record_id])
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            timestamp_ns, record_id = orjson.loads(raw)
            if not (type(timestamp_ns) is int and type(record_id) is int):  # bools are ints too
                raise ValueError("not two integers")
            if not (0 <= record_id < 2**64 and 0 <= timestamp_ns <= MAX_TIME_NS):
                raise ValueError("out of range")
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
            raise bad_parameter("cursor", "is not a cursor returned by this API") from exc
        return cls(timestamp_ns, record_id)


def reject_unknown(args: Mapping[str, str], allowed: frozenset[str]) -> None:
    """A misspelt filter would silently return everything; refuse it instead."""
    for name in args:
        if name not in allowed:
            raise bad_parameter(name, f"unknown parameter; expected one of {', '.join(sorted(allowed))}")
