"""The query layer between the routes and the store (the seed's LoggingService).

Routes parse and validate; this module turns validated filters into SQL with bound parameters only,
and rows into the API's record shape.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from exporters import anyvalue
from exporters.store.connection import PROMOTED_ATTRIBUTE_VALUES, PROMOTED_KEYS, TelemetryStore
from exporters.store.search_index import needle_grams
from service.params import LEVELS, NS, Cursor, format_time, level_name

_LOG_COLUMNS = """
    id, epoch_ns(timestamp) AS ts, epoch_ns(observed_timestamp) AS observed, severity_text, severity_number,
    body, scope_name, scope_version, trace_id, span_id, event_name, service_name, pipeline_id, run_id, stage,
    attributes, resource_attributes, promoted_keys, time_absent, coalesce(flags, trace_flags) AS flags,
    body_value, typed_values, dropped_attributes_count, resource_schema_url,
    resource_dropped_attributes_count, scope_schema_url, scope_attributes, scope_dropped_attributes_count,
    promoted_places
"""
_SPAN_COLUMNS = """
    trace_id, span_id, parent_span_id, name, kind, epoch_ns(start_time), epoch_ns(end_time), duration_ns,
    status_code, status_message, attributes, service_name, pipeline_id, run_id, stage, events, links,
    resource_attributes, scope_name, scope_version, trace_state, flags, dropped_attributes_count,
    dropped_events_count, dropped_links_count, resource_dropped_attributes_count,
    scope_dropped_attributes_count, resource_schema_url, scope_schema_url, scope_attributes, typed_values
"""
MAX_TRACE_LOGS = 10_000
# Timeline bucket widths to choose from, smallest first; the first giving at most MAX_BUCKETS wins.
_BUCKET_SECONDS = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BUCKETS = 120
# Newest-first pages look in a window before the upper end of the page first, widening it at most
# a few times before one query over everything.
_FIRST_WINDOW_NS = 3600 * NS
_MAX_WINDOWS = 3


@dataclass(frozen=True)
class LogFilter:
    pipeline_id: str | None = None
    run_id: str | None = None
    stage: str | None = None
    min_severity: int | None = None
    since_ns: int | None = None
    until_ns: int | None = None

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("pipeline_id", self.pipeline_id),
            ("run_id", self.run_id),
            ("stage", self.stage),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.min_severity is not None:
            clauses.append("severity_number >= ?")
            params.append(self.min_severity)
        if self.since_ns is not None:
            clauses.append("timestamp >= make_timestamp_ns(?)")
            params.append(self.since_ns)
        if self.until_ns is not None:
            clauses.append("timestamp < make_timestamp_ns(?)")
            params.append(self.until_ns)
        return clauses, params


@dataclass(frozen=True)
class Page:
    logs: list[dict[str, Any]]
    next_cursor: str | None


def _json(text: str | None) -> Any:
    return orjson.loads(text) if text else {}


def log_record(row: Sequence[Any]) -> dict[str, Any]:
    """A stored log row as the API's record: every OTLP field, values typed (``exporters.anyvalue``),
    ``timestamp`` null when the record had no time of its own (``sort_timestamp`` is what it is
    ordered and filtered by)."""
    (record_id, ts, observed, severity_text, severity_number, body, scope_name, scope_version, trace_id,
     span_id, event_name, service_name, pipeline_id, run_id, stage, attributes, resource,
     promoted_keys, time_absent, flags, body_value, typed_values, dropped, resource_schema_url,
     resource_dropped, scope_schema_url, scope_attributes, scope_dropped, promoted_places) = row  # fmt: skip
    attributes_out = anyvalue.api_map(attributes, typed_values)
    if promoted_keys:  # string attributes kept only in their columns (exporters.store) go back
        attributes_out = _with_promoted(attributes_out, promoted_keys, promoted_places or 0,
                                        (pipeline_id, run_id, stage))  # fmt: skip
    has_scope = scope_name is not None or scope_attributes is not None or scope_schema_url is not None
    return {
        "id": format(record_id, "016x"),
        "timestamp": None if time_absent else format_time(ts),
        "observed_timestamp": format_time(observed),
        "sort_timestamp": format_time(ts),
        "severity_text": severity_text,
        "severity_number": severity_number,
        "body": orjson.loads(body_value) if body_value is not None else body,
        "scope": {
            "name": scope_name,
            "version": scope_version,
            "schema_url": scope_schema_url,
            "attributes": anyvalue.api_map(scope_attributes, typed_values),
            "dropped_attributes_count": scope_dropped or 0,
        }
        if has_scope
        else None,
        "trace_id": trace_id,
        "span_id": span_id,
        "flags": flags,
        "event_name": event_name,
        "service_name": service_name,
        "pipeline_id": pipeline_id,
        "run_id": run_id,
        "stage": stage,
        "attributes": attributes_out,
        "dropped_attributes_count": dropped or 0,
        "resource": anyvalue.api_map(resource, typed_values),
        "resource_schema_url": resource_schema_url,
        "resource_dropped_attributes_count": resource_dropped or 0,
    }


def _typed(values: dict[str, Any] | None, typed_form: bool) -> dict[str, Any]:
    """An attribute map read from inside stored JSON (events, links) in the API's typed form."""
    if not values:
        return {}
    return values if typed_form else {key: anyvalue.from_plain(value) for key, value in values.items()}


def _with_promoted(
    attributes: dict[str, Any], promoted_keys: int, places: int, values: tuple[Any, ...]
) -> dict[str, Any]:
    """``attributes`` with the promoted ones back where they stood (byte i of ``places``, from 1; 0:
    not known, as in rows stored before schema 6, which go last)."""
    items = list(attributes.items())
    back = [
        (places >> (8 * bit) & 0xFF or len(items) + 1 + bit, key, values[bit])
        for bit, (key, _) in enumerate(PROMOTED_KEYS)
        if promoted_keys >> bit & 1
    ]
    for place, key, value in sorted(back):
        items.insert(place - 1, (key, value))
    return dict(items)


def span_record(row: Sequence[Any]) -> dict[str, Any]:
    (trace_id, span_id, parent, name, kind, start, end, duration_ns, status_code, status_message, attributes,
     service_name, pipeline_id, run_id, stage, events, links, resource, scope_name, scope_version,
     trace_state, flags, dropped_attributes, dropped_events, dropped_links, resource_dropped,
     scope_dropped, resource_schema_url, scope_schema_url, scope_attributes, typed_values) = row  # fmt: skip
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "trace_state": trace_state,
        "flags": flags,
        "name": name,
        "kind": kind,
        "start": format_time(start),
        "end": format_time(end),
        "duration_ms": duration_ns / 1e6 if duration_ns is not None else None,
        "status": {"code": status_code, "message": status_message},
        "attributes": anyvalue.api_map(attributes, typed_values),
        "dropped_attributes_count": dropped_attributes,
        "dropped_events_count": dropped_events,
        "dropped_links_count": dropped_links,
        "service_name": service_name,
        "pipeline_id": pipeline_id,
        "run_id": run_id,
        "stage": stage,
        # Spans stored before schema 7 did not record these: null, as for the span's own counts.
        "events": [
            {
                "dropped_attributes_count": None,
                **event,
                "timestamp": format_time(event.get("timestamp")),
                "attributes": _typed(event.get("attributes"), typed_values),
            }
            for event in _json(events) or []
        ],
        "links": [
            {
                "trace_state": None,
                "flags": None,
                "dropped_attributes_count": None,
                **link,
                "attributes": _typed(link.get("attributes"), typed_values),
            }
            for link in _json(links) or []
        ],
        "scope": {
            "name": scope_name,
            "version": scope_version,
            "schema_url": scope_schema_url,
            "attributes": anyvalue.api_map(scope_attributes, bool(typed_values)),
            "dropped_attributes_count": scope_dropped,
        }
        if scope_name is not None or scope_attributes is not None
        else None,
        "scope_dropped_attributes_count": scope_dropped,
        "resource": anyvalue.api_map(resource, typed_values),
        "resource_schema_url": resource_schema_url,
        "resource_dropped_attributes_count": resource_dropped,
    }


class LogQueries:
    """Read (and retention-delete) telemetry in the store, each call on its own cursor."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store

    def _newest(
        self, clauses: list[str], params: list[Any], limit: int, cursor: Cursor | None, filters: LogFilter
    ) -> list[tuple[Any, ...]]:
        """The newest ``limit`` + 1 matching rows, looked for in time windows (search's way).

        Newest first over the whole store would read every row group that has a match. Records
        arrive in time order, so row groups hold narrow time ranges and DuckDB skips those outside a
        ``timestamp >=`` bound: matches are first looked for in the hour before the page's upper end
        (``until``, the cursor, or the newest record), then in windows widened by how many matches
        the previous one held, then everywhere. When a window holds more than ``limit`` matches they are
        the newest, so the answer is the same as one unbounded query; when it does not, the next
        (wider) window is tried.
        """
        bounds = [filters.until_ns, cursor.timestamp_ns if cursor is not None else None]
        known = [value for value in bounds if value is not None]
        upper = min(known) if known else self.store.newest_log_ns()
        if upper is None:
            return []
        width = _FIRST_WINDOW_NS
        for _ in range(_MAX_WINDOWS):
            lower = upper - width
            if lower <= 0 or (filters.since_ns is not None and lower <= filters.since_ns):
                break  # the window already reaches back to the start: ask once, unbounded
            in_window = [*clauses, "timestamp >= make_timestamp_ns(?)"]
            found = self._select(in_window, [*params, lower], limit)
            if len(found) > limit:
                return found
            if not found:
                break  # matches are sparse: one query over everything beats widening step by step
            # Widen to where the matches seen so far say a full page should be, with room to spare.
            width = min(width * max(4, 2 * (limit + 1) // len(found)), upper)
        return self._select(clauses, params, limit)

    def _select(self, clauses: list[str], params: list[Any], limit: int) -> list[tuple[Any, ...]]:
        """The newest ``limit`` + 1 matching rows (one more tells whether a next page exists)."""
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_LOG_COLUMNS} FROM logs {where} ORDER BY timestamp DESC, id DESC LIMIT ?"
        return self.store.cursor().execute(sql, [*params, limit + 1]).fetchall()

    def pipeline_logs(self, filters: LogFilter, limit: int, cursor: Cursor | None = None) -> Page:
        """The newest ``limit`` records the column filters (pipeline, run, stage, level, time) pass,
        after ``cursor`` when given.

        One query: DuckDB's top-N pushes its running cut-off into the scan as a timestamp filter,
        skipping older row groups, and its late materialization (enabled up to pages of 1,000 in
        ``exporters.store``) picks the page's row ids from the filter and key columns before reading
        the wide ones, for those rows only. Reading wide rows costs far more than testing a column
        (DuckDB decompresses whole vectors of every column). Search looks in time windows instead
        (``_newest``): its test reads the wide text columns itself, so the scan has to be bounded
        before it starts.
        """
        clauses, params = _after_cursor(*filters.where(), cursor)
        return _page(self._select(clauses, params, limit), limit)

    def search(self, text: str, filters: LogFilter, limit: int, cursor: Cursor | None = None) -> Page:
        """Case-insensitive substring match in the body or in any attribute value (not in keys)."""
        # Lower-cased by DuckDB, as the stored text is: Python's lower() differs for some letters (a
        # final sigma, a dotted capital I) and then a needle would never match what is stored.
        row = self.store.cursor().execute("SELECT lower(?)", [text]).fetchone()
        needle = str(row[0]) if row else text.lower()
        grams = needle_grams(needle)
        if grams:
            # Only the hours whose text has every gram of the needle can hold a match.
            span = self.store.search_index().span(grams)
            if span is None:
                return Page([], None)
            since = span.start_ns if filters.since_ns is None else max(filters.since_ns, span.start_ns)
            until = span.end_ns if filters.until_ns is None else min(filters.until_ns, span.end_ns)
            if since >= until:
                return Page([], None)
            filters = replace(filters, since_ns=since, until_ns=until)
        clauses, params = filters.where()
        attribute_match = (
            "contains(lower(array_to_string(json_extract_string(attributes, '$.*'), chr(31))), ?)"
        )
        if _survives_json_escaping(text):
            # Cheap prefilter on the raw JSON text before extracting values.
            attribute_match = f"(contains(lower(attributes), ?) AND {attribute_match})"
            attribute_params = [needle, needle]
        else:
            attribute_params = [needle]
        promoted_match = f"contains(lower({PROMOTED_ATTRIBUTE_VALUES}), ?)"
        clauses.append(f"(contains(lower(body), ?) OR {promoted_match} OR {attribute_match})")
        params.extend([needle, needle, *attribute_params])
        clauses, params = _after_cursor(clauses, params, cursor)
        return _page(self._newest(clauses, params, limit, cursor, filters), limit)

    def correlation(self, trace_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """Logs (oldest first) and spans of one trace, and whether the logs were cut at the cap."""
        cur = self.store.cursor()
        # The trace's time window first (a small table), then only the logs inside it.
        window = cur.execute(
            """SELECT epoch_ns(min(first_ts)), epoch_ns(max(last_ts)) FROM trace_windows
               WHERE trace_key = hash(?::VARCHAR)""",
            [trace_id],
        ).fetchone()
        rows = []
        if window is not None and window[0] is not None:
            rows = cur.execute(
                f"""SELECT {_LOG_COLUMNS} FROM logs
                    WHERE trace_id = ? AND timestamp BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?)
                    ORDER BY timestamp, id LIMIT ?""",
                [trace_id, window[0], window[1], MAX_TRACE_LOGS + 1],
            ).fetchall()
        truncated = len(rows) > MAX_TRACE_LOGS
        spans = cur.execute(
            f"SELECT {_SPAN_COLUMNS} FROM spans WHERE trace_id = ? ORDER BY start_time, span_id", [trace_id]
        ).fetchall()
        return [log_record(r) for r in rows[:MAX_TRACE_LOGS]], [span_record(s) for s in spans], truncated

    def stats(self, filters: LogFilter, now_ns: int | None = None) -> dict[str, Any]:
        clauses, params = filters.where()
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        cur = self.store.cursor()
        level_rows = cur.execute(
            f"SELECT severity_number, count(*) FROM logs {where} GROUP BY ALL", params
        ).fetchall()
        by_level: dict[str, int] = {}
        for severity, count in level_rows:
            name = level_name(severity)
            by_level[name] = by_level.get(name, 0) + int(count)
        total = sum(by_level.values())
        errors = sum(count for severity, count in level_rows if (severity or 0) >= LEVELS["ERROR"])
        pipelines = cur.execute(
            f"""SELECT pipeline_id, count(*) AS n, count(*) FILTER (severity_number >= ?) AS errors
                FROM logs {where} GROUP BY pipeline_id ORDER BY n DESC, pipeline_id LIMIT 100""",
            [LEVELS["ERROR"], *params],
        ).fetchall()
        return {
            "total": total,
            "by_level": by_level,
            "by_pipeline": [
                {"pipeline_id": pipeline, "count": int(n), "errors": int(e)} for pipeline, n, e in pipelines
            ],
            "error_rate": errors / total if total else 0.0,
            "timeline": self._timeline(where, params, filters, now_ns)
            if total
            else {"bucket_seconds": None, "buckets": []},
        }

    def _timeline(
        self, where: str, params: list[Any], filters: LogFilter, now_ns: int | None
    ) -> dict[str, Any]:
        cur = self.store.cursor()
        lo, hi = filters.since_ns, filters.until_ns
        if lo is None or hi is None:
            row = cur.execute(
                f"SELECT epoch_ns(min(timestamp)), epoch_ns(max(timestamp)) FROM logs {where}", params
            ).fetchone()
            assert row is not None
            lo = row[0] if lo is None else lo
            hi = (row[1] + 1) if hi is None else hi
        span_seconds = max(1, (hi - lo) // NS)
        width = next((w for w in _BUCKET_SECONDS if span_seconds / w <= MAX_BUCKETS), _BUCKET_SECONDS[-1])
        width_ns = width * NS
        rows = cur.execute(
            f"""SELECT (epoch_ns(timestamp) // ?) * ? AS bucket, severity_number, count(*)
                FROM logs {where} GROUP BY ALL ORDER BY bucket""",
            [width_ns, width_ns, *params],
        ).fetchall()
        buckets: dict[int, dict[str, int]] = {}
        for bucket, severity, count in rows:
            counts = buckets.setdefault(int(bucket), {})
            name = level_name(severity)
            counts[name] = counts.get(name, 0) + int(count)
        return {
            "bucket_seconds": width,
            "buckets": [
                {"start": format_time(start), "total": sum(counts.values()), "by_level": counts}
                for start, counts in sorted(buckets.items())
            ],
        }

    def cleanup(
        self, before_ns: int, pipeline_id: str | None = None, dry_run: bool = False
    ) -> dict[str, int]:
        """Delete logs older than ``before_ns`` and the spans that started before it."""
        log_where = "timestamp < make_timestamp_ns(?)"
        span_where = "start_time < make_timestamp_ns(?)"
        params: list[Any] = [before_ns]
        if pipeline_id is not None:
            log_where += " AND pipeline_id = ?"
            span_where += " AND pipeline_id = ?"
            params.append(pipeline_id)
        verb = "SELECT count(*) FROM" if dry_run else "DELETE FROM"
        with self.store.writer() as cur:
            logs_row = cur.execute(f"{verb} logs WHERE {log_where}", params).fetchone()
            spans_row = cur.execute(f"{verb} spans WHERE {span_where}", params).fetchone()
            if not dry_run and pipeline_id is None:
                # Windows wholly before the cut cover no log any more. With a pipeline filter, other
                # pipelines' logs of the same traces may remain, so their windows stay.
                cur.execute("DELETE FROM trace_windows WHERE last_ts < make_timestamp_ns(?)", [before_ns])
                # Delivery keys are kept as long as records of their time are: a retry or replay of a
                # delivery older than the cut could only bring back records retention removed.
                cur.execute("DELETE FROM deliveries WHERE received_at < make_timestamp_ns(?)", [before_ns])
                # Hours wholly before the cut hold no text any more.
                self.store.drop_search_hours_before(cur, before_ns)
        return {
            "logs": int(logs_row[0]) if logs_row else 0,
            "spans": int(spans_row[0]) if spans_row else 0,
        }

    def retention_cutoff(self, days: float, now_ns: int | None = None) -> int:
        return (time.time_ns() if now_ns is None else now_ns) - int(days * 86400 * NS)


def _page(rows: list[tuple[Any, ...]], limit: int) -> Page:
    """Up to ``limit`` of the newest-first ``rows``; a cursor when the one more asked for came back."""
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = Cursor(rows[-1][1], rows[-1][0]).encode()
    return Page([log_record(row) for row in rows], next_cursor)


def _after_cursor(
    clauses: list[str], params: list[Any], cursor: Cursor | None
) -> tuple[list[str], list[Any]]:
    """Keyset paging on (timestamp, id), newest first: rows arriving meanwhile never shift a page."""
    if cursor is None:
        return clauses, params
    return (
        [*clauses, "timestamp <= make_timestamp_ns(?)", "(timestamp < make_timestamp_ns(?) OR id < ?)"],
        [*params, cursor.timestamp_ns, cursor.timestamp_ns, cursor.record_id],
    )


def _survives_json_escaping(text: str) -> bool:
    """True when ``text`` appears verbatim inside JSON-encoded values (no quote, backslash or control)."""
    return not any(ch in '"\\' or ord(ch) < 32 for ch in text)
