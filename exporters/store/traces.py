"""Trace search: the traces in the store, one row each, newest first (Jaeger's "Find traces").

A trace is the spans sharing a trace id. Its *root* is its span without a parent; when the store holds
no such span (the root was never sent, or was sent to another backend) the trace's earliest span
stands in for it and ``root_missing`` says so, as Jaeger shows "trace without root span". A trace
starts at its earliest span and ends at its latest span end; its duration is the difference.

Filters are on the trace, not on single spans: ``service_name`` and ``pipeline_id`` match when any span
of the trace carries them, ``name`` is the root's name, ``status`` ``error`` means at least one span
ended with status ERROR and ``ok`` means none did, ``since``/``until`` bound the trace's start.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from exporters.store.connection import TelemetryStore
from exporters.store.statements import records
from service.params import format_time

_TRACE_ID_LENGTH = 32


@dataclass(frozen=True)
class TraceFilter:
    service_name: str | None = None
    name: str | None = None
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    status: str | None = None  # "ok" or "error"
    pipeline_id: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None

    def where(self) -> tuple[list[str], list[str], dict[str, Any]]:
        """Predicates on single spans (each necessary for a match, so they narrow the traces to
        aggregate: a trace starting in [since, until) has its earliest span there), predicates on
        the aggregated traces, and the parameters of both, by name."""
        given = {name: value for name, value in vars(self).items() if value is not None}
        span_level = [_SPAN_PREDICATES[name] for name in given if name in _SPAN_PREDICATES]
        trace_level = [_TRACE_PREDICATES[name] for name in given if name in _TRACE_PREDICATES]
        if "status" in given:
            trace_level.append("error_count > 0" if given.pop("status") == "error" else "error_count = 0")
        return span_level, trace_level, given


_SPAN_PREDICATES = {
    "since_ns": "start_time >= make_timestamp_ns($since_ns)",
    "until_ns": "start_time < make_timestamp_ns($until_ns)",
}
_TRACE_PREDICATES = {
    "service_name": "list_contains(services, $service_name)",
    "pipeline_id": "list_contains(pipeline_ids, $pipeline_id)",
    "name": "root_name = $name",
    "min_duration_ns": "duration_ns >= $min_duration_ns",
    "max_duration_ns": "duration_ns <= $max_duration_ns",
    "since_ns": "start_ns >= $since_ns",
    "until_ns": "start_ns < $until_ns",
}

# The root first (no parent), then the earliest: DuckDB orders structs field by field.
_ROOT_ORDER = "{{'child': parent_span_id IS NOT NULL, 'start': start_time, 'id': span_id}}"
_TRACES = f"""
WITH traces AS (
    SELECT trace_id,
           epoch_ns(min(start_time)) AS start_ns,
           epoch_ns(max(coalesce(end_time, start_time))) AS end_ns,
           epoch_ns(max(coalesce(end_time, start_time))) - epoch_ns(min(start_time)) AS duration_ns,
           count(*) AS span_count,
           count(*) FILTER (status_code = 'ERROR') AS error_count,
           arg_min(span_id, {_ROOT_ORDER}) AS root_span_id,
           arg_min(name, {_ROOT_ORDER}) AS root_name,
           arg_min(service_name, {_ROOT_ORDER}) AS root_service_name,
           NOT bool_or(parent_span_id IS NULL) AS root_missing,
           list_sort(coalesce(list(DISTINCT service_name) FILTER (service_name IS NOT NULL), []::VARCHAR[]))
               AS services,
           list_sort(coalesce(list(DISTINCT pipeline_id) FILTER (pipeline_id IS NOT NULL), []::VARCHAR[]))
               AS pipeline_ids
    FROM spans
    {{span_where}}
    GROUP BY trace_id
)
SELECT * FROM traces {{trace_where}}
ORDER BY start_ns DESC, trace_id DESC
LIMIT $limit
"""


@dataclass(frozen=True)
class TraceCursor:
    """Where a newest-first page of traces ended: the last trace's start and id."""

    start_ns: int
    trace_id: str

    def encode(self) -> str:
        raw = orjson.dumps([self.start_ns, self.trace_id])
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, value: str) -> TraceCursor:
        """Raises ValueError for anything this API did not hand out."""
        try:
            start_ns, trace_id = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        except (ValueError, TypeError, binascii.Error) as exc:
            raise ValueError("not a trace cursor") from exc
        if type(start_ns) is not int or not 0 <= start_ns < 2**63:
            raise ValueError("not a trace cursor")
        if not isinstance(trace_id, str) or len(trace_id) != _TRACE_ID_LENGTH:
            raise ValueError("not a trace cursor")
        try:
            int(trace_id, 16)
        except ValueError as exc:
            raise ValueError("not a trace cursor") from exc
        return cls(start_ns, trace_id)


@dataclass(frozen=True)
class TracePage:
    traces: list[dict[str, Any]]
    next_cursor: str | None


class TraceQueries:
    """Find traces in the store, each call on its own cursor."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store

    def find(self, filters: TraceFilter, limit: int, cursor: TraceCursor | None = None) -> TracePage:
        span_level, trace_level, params = filters.where()
        if cursor is not None:
            trace_level.append(
                "(start_ns < $cursor_ns OR (start_ns = $cursor_ns AND trace_id < $cursor_trace_id))"
            )
            params = {**params, "cursor_ns": cursor.start_ns, "cursor_trace_id": cursor.trace_id}
        sql = _TRACES.format(span_where=_where(span_level), trace_where=_where(trace_level))
        rows = records(self.store.cursor().execute(sql, {**params, "limit": limit + 1}))
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = TraceCursor(rows[-1]["start_ns"], rows[-1]["trace_id"]).encode()
        return TracePage([_trace(row) for row in rows], next_cursor)


def _where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _trace(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "trace_id": row["trace_id"],
        "root_span_id": row["root_span_id"],
        "root_name": row["root_name"],
        "root_service_name": row["root_service_name"],
        "root_missing": row["root_missing"],
        "start": format_time(row["start_ns"]),
        "end": format_time(row["end_ns"]),
        "duration_ms": row["duration_ns"] / 1e6,
        "span_count": row["span_count"],
        "error_count": row["error_count"],
        "error": row["error_count"] > 0,
        "services": row["services"],
        "pipeline_ids": row["pipeline_ids"],
    }
