"""The query layer between the routes and the store (the seed's LoggingService).

Routes parse and validate; this module turns validated filters into SQL with bound parameters only,
and rows into the API's record shape (log rows by position, checked against ``LOG_NAMES``; others by name).

Statements with a fixed shape are whole files in ``sql/``. Pages, search and stats take their WHERE
from the filters given: each filter is one fixed predicate with its own ``$named`` parameter
(``LogFilter.where``), and a filter not given is left out of the statement rather than written as
``$x IS NULL OR ...``, so that DuckDB plans with the real predicates only (row-group pruning, the
top-N's cut-off pushed into the scan: see ``pipeline_logs``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import duckdb
import orjson

from exporters import anyvalue
from exporters.records import PROMOTED_KEYS
from exporters.store.connection import TelemetryStore
from exporters.store.log_stats import log_stats
from exporters.store.search_index import END_OF_TIME_NS, needle_grams
from exporters.store.statements import record, records, statement
from service.params import NS, Cursor, format_time

# The columns of sql/trace_logs.sql, for the pages' statements.
LOG_COLUMNS = """
    id, epoch_ns(timestamp) AS ts, epoch_ns(observed_timestamp) AS observed, severity_text, severity_number,
    body, scope_name, scope_version, trace_id, span_id, event_name, service_name, pipeline_id, run_id, stage,
    attributes, resource_attributes, promoted_keys, time_absent, coalesce(flags, trace_flags) AS flags,
    body_value, typed_values, dropped_attributes_count, resource_schema_url,
    resource_dropped_attributes_count, scope_schema_url, scope_attributes, scope_dropped_attributes_count,
    promoted_places
"""
MAX_TRACE_LOGS = 10_000
# Newest-first pages look in a window before the upper end of the page first, widening it at most
# a few times before one query over everything.
_FIRST_WINDOW_NS = 3600 * NS
_MAX_WINDOWS = 3
# Search looks in every attribute value, those kept only in their columns too (sql/insert_logs.sql):
# bit i of ``promoted_keys`` set means key i of PROMOTED_KEYS was taken out of ``attributes``.
# ``x ILIKE '%needle%'`` matches as ``contains(lower(x), needle)`` does (DuckDB lower-cases both sides
# with the same function; ``tests/exporters/store/test_search_match.py`` holds them to it on Unicode
# that lower-cases unevenly) without writing a lower-cased copy of every value: about a tenth less
# time per search of the store benchmark's last hour.
_SEARCH_MATCH = """(
    body ILIKE $pattern ESCAPE '\\'
    OR concat_ws(chr(31),
        CASE WHEN promoted_keys & 1 <> 0 THEN pipeline_id END,
        CASE WHEN promoted_keys & 2 <> 0 THEN run_id END,
        CASE WHEN promoted_keys & 4 <> 0 THEN stage END
    ) ILIKE $pattern ESCAPE '\\'
    OR array_to_string(json_extract_string(attributes, '$.*'), chr(31)) ILIKE $pattern ESCAPE '\\'
)"""
# The same, with a cheap prefilter on the raw JSON text before extracting values; only for needles
# that appear verbatim inside JSON-encoded values.
_SEARCH_MATCH_PREFILTERED = """(
    body ILIKE $pattern ESCAPE '\\'
    OR concat_ws(chr(31),
        CASE WHEN promoted_keys & 1 <> 0 THEN pipeline_id END,
        CASE WHEN promoted_keys & 2 <> 0 THEN run_id END,
        CASE WHEN promoted_keys & 4 <> 0 THEN stage END
    ) ILIKE $pattern ESCAPE '\\'
    OR (attributes ILIKE $pattern ESCAPE '\\'
        AND array_to_string(json_extract_string(attributes, '$.*'), chr(31)) ILIKE $pattern ESCAPE '\\')
)"""


def like_pattern(needle: str) -> str:
    """An ILIKE pattern matching values that hold ``needle`` (lower-cased) anywhere, its wildcards
    and escape character taken literally."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_TRACE_WINDOW = statement("trace_window")
_TRACE_LOGS = statement("trace_logs")
_TRACE_SPANS = statement("trace_spans")
_SERVICE_NAMES = statement("service_names")
_COUNT_LOGS_BEFORE = statement("count_logs_before")
_DELETE_LOGS_BEFORE = statement("delete_logs_before")
_COUNT_SPANS_BEFORE = statement("count_spans_before")
_DELETE_SPANS_BEFORE = statement("delete_spans_before")
_DELETE_TRACE_WINDOWS_BEFORE = statement("delete_trace_windows_before")
_DELETE_DELIVERIES_BEFORE = statement("delete_deliveries_before")

Params = dict[str, Any]


@dataclass(frozen=True)
class LogFilter:
    service_name: str | None = None
    pipeline_id: str | None = None
    run_id: str | None = None
    stage: str | None = None
    min_severity: int | None = None
    since_ns: int | None = None
    until_ns: int | None = None

    def where(self) -> tuple[list[str], Params]:
        """The predicates of the filters given, each with its parameter, by name."""
        given = {name: value for name, value in vars(self).items() if value is not None}
        return [_FILTER_PREDICATES[name] for name in given], given


# One predicate per LogFilter field, named as the field and its parameter.
_FILTER_PREDICATES = {
    "service_name": "service_name = $service_name",
    "pipeline_id": "pipeline_id = $pipeline_id",
    "run_id": "run_id = $run_id",
    "stage": "stage = $stage",
    "min_severity": "severity_number >= $min_severity",
    "since_ns": "timestamp >= make_timestamp_ns($since_ns)",
    "until_ns": "timestamp < make_timestamp_ns($until_ns)",
}


@dataclass(frozen=True)
class Page:
    logs: list[dict[str, Any]]
    next_cursor: str | None


def _json(text: str | None) -> Any:
    return orjson.loads(text) if text else {}


# The names of LOG_COLUMNS (and of sql/trace_logs.sql), in their order: rows are read as tuples.
LOG_NAMES = (
    "id", "ts", "observed", "severity_text", "severity_number", "body", "scope_name", "scope_version",
    "trace_id", "span_id", "event_name", "service_name", "pipeline_id", "run_id", "stage", "attributes",
    "resource_attributes", "promoted_keys", "time_absent", "flags", "body_value", "typed_values",
    "dropped_attributes_count", "resource_schema_url", "resource_dropped_attributes_count",
    "scope_schema_url", "scope_attributes", "scope_dropped_attributes_count", "promoted_places",
)  # fmt: skip
_ID, _TS = LOG_NAMES.index("id"), LOG_NAMES.index("ts")


def log_rows(cur: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """The rows of the log statement ``cur`` just ran, as tuples in ``LOG_NAMES``' order: a dict per
    row cost as much as decoding it."""
    names = tuple(column[0] for column in cur.description or ())
    if names != LOG_NAMES:
        raise RuntimeError(f"a log statement's columns are {names}, not LOG_NAMES")
    return cur.fetchall()


def log_records(rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Stored log rows (``log_rows``) as the API's records: every OTLP field, values typed
    (``exporters.anyvalue``), ``timestamp`` null when the record had no time of its own
    (``sort_timestamp`` is what it is ordered and filtered by).

    The rows of one answer mostly share a resource and a scope: each distinct one is decoded once,
    and the records share it (read only)."""
    shared: dict[tuple[str, bool], dict[str, Any]] = {}
    out = []
    for (
        record_id, ts, observed, severity_text, severity_number, body, scope_name, scope_version,
        trace_id, span_id, event_name, service_name, pipeline_id, run_id, stage, attributes,
        resource_attributes, promoted_keys, time_absent, flags, body_value, typed_values,
        dropped_attributes_count, resource_schema_url, resource_dropped_attributes_count,
        scope_schema_url, scope_attributes, scope_dropped_attributes_count, promoted_places,
    ) in rows:  # fmt: skip
        attributes_out = anyvalue.api_map(attributes, typed_values)
        if promoted_keys:  # string attributes kept only in their columns (sql/insert_logs.sql) go back
            attributes_out = _with_promoted(
                attributes_out, promoted_keys, promoted_places or 0, (pipeline_id, run_id, stage)
            )
        has_scope = scope_name is not None or scope_attributes is not None or scope_schema_url is not None
        sort_timestamp = format_time(ts)
        out.append(
            {
                "id": format(record_id, "016x"),
                "timestamp": None if time_absent else sort_timestamp,
                "observed_timestamp": format_time(observed),
                "sort_timestamp": sort_timestamp,
                "severity_text": severity_text,
                "severity_number": severity_number,
                "body": orjson.loads(body_value) if body_value is not None else body,
                "scope": {
                    "name": scope_name,
                    "version": scope_version,
                    "schema_url": scope_schema_url,
                    "attributes": _shared_map(shared, scope_attributes, typed_values),
                    "dropped_attributes_count": scope_dropped_attributes_count or 0,
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
                "dropped_attributes_count": dropped_attributes_count or 0,
                "resource": _shared_map(shared, resource_attributes, typed_values),
                "resource_schema_url": resource_schema_url,
                "resource_dropped_attributes_count": resource_dropped_attributes_count or 0,
            }
        )
    return out


def _shared_map(
    shared: dict[tuple[str, bool], dict[str, Any]], text: str | None, typed: bool
) -> dict[str, Any]:
    if text is None:
        return {}
    found = shared.get((text, typed))
    if found is None:
        found = shared[(text, typed)] = anyvalue.api_map(text, typed)
    return found


def _with_promoted(
    attributes: dict[str, Any], promoted_keys: int, places: int, values: tuple[Any, ...]
) -> dict[str, Any]:
    """``attributes`` with the promoted ones back where they stood (byte i of ``places``, from 1; 0:
    not known, as in rows stored before schema 6, which go last)."""
    first, back = _promoted_places(promoted_keys, places, len(attributes))
    if first:  # they stood first (places 1..k), the usual case
        return {key: values[bit] for _, key, bit in back} | attributes
    items = list(attributes.items())
    for place, key, bit in back:
        items.insert(place - 1, (key, values[bit]))
    return dict(items)


@functools.lru_cache(maxsize=1024)
def _promoted_places(
    promoted_keys: int, places: int, count: int
) -> tuple[bool, tuple[tuple[int, str, int], ...]]:
    """Where each promoted attribute goes back, in order: (place, key, bit); and whether they all go
    first. A page's records share a few shapes: each is worked out once."""
    back = sorted(
        (places >> (8 * bit) & 0xFF or count + 1 + bit, key, bit)
        for bit, (key, _) in enumerate(PROMOTED_KEYS)
        if promoted_keys >> bit & 1
    )
    return back[-1][0] == len(back), tuple(back)


def span_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored span row (by the names of sql/trace_spans.sql) as the API's span."""
    typed_values = row["typed_values"]
    duration_ns = row["duration_ns"]
    scope_name, scope_attributes = row["scope_name"], row["scope_attributes"]
    scope_dropped = row["scope_dropped_attributes_count"]
    return {
        "trace_id": row["trace_id"],
        "span_id": row["span_id"],
        "parent_span_id": row["parent_span_id"],
        "trace_state": row["trace_state"],
        "flags": row["flags"],
        "name": row["name"],
        "kind": row["kind"],
        "start": format_time(row["start_ns"]),
        "end": format_time(row["end_ns"]),
        "duration_ms": duration_ns / 1e6 if duration_ns is not None else None,
        "status": {"code": row["status_code"], "message": row["status_message"]},
        "attributes": anyvalue.api_map(row["attributes"], typed_values),
        "dropped_attributes_count": row["dropped_attributes_count"],
        "dropped_events_count": row["dropped_events_count"],
        "dropped_links_count": row["dropped_links_count"],
        "service_name": row["service_name"],
        "pipeline_id": row["pipeline_id"],
        "run_id": row["run_id"],
        "stage": row["stage"],
        # Spans stored before schema 7 did not record these: null, as for the span's own counts.
        "events": [
            {
                "dropped_attributes_count": None,
                **event,
                "timestamp": format_time(event.get("timestamp")),
                "attributes": anyvalue.api_values(event.get("attributes"), typed_values),
            }
            for event in _json(row["events"]) or []
        ],
        "links": [
            {
                "trace_state": None,
                "flags": None,
                "dropped_attributes_count": None,
                **link,
                "attributes": anyvalue.api_values(link.get("attributes"), typed_values),
            }
            for link in _json(row["links"]) or []
        ],
        "scope": {
            "name": scope_name,
            "version": row["scope_version"],
            "schema_url": row["scope_schema_url"],
            "attributes": anyvalue.api_map(scope_attributes, bool(typed_values)),
            "dropped_attributes_count": scope_dropped,
        }
        if scope_name is not None or scope_attributes is not None
        else None,
        "scope_dropped_attributes_count": scope_dropped,
        "resource": anyvalue.api_map(row["resource_attributes"], typed_values),
        "resource_schema_url": row["resource_schema_url"],
        "resource_dropped_attributes_count": row["resource_dropped_attributes_count"],
    }


class LogQueries:
    """Read (and retention-delete) telemetry in the store, each call on its own cursor."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store

    def _newest(
        self, clauses: list[str], params: Params, limit: int, cursor: Cursor | None, filters: LogFilter
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
            in_window = [*clauses, "timestamp >= make_timestamp_ns($window_start_ns)"]
            found = self._select(in_window, {**params, "window_start_ns": lower}, limit)
            if len(found) > limit:
                return found
            if not found:
                break  # matches are sparse: one query over everything beats widening step by step
            # Widen to where the matches seen so far say a full page should be, with room to spare.
            width = min(width * max(4, 2 * (limit + 1) // len(found)), upper)
        return self._select(clauses, params, limit)

    def _select(self, clauses: list[str], params: Params, limit: int) -> list[tuple[Any, ...]]:
        """The newest ``limit`` + 1 matching rows (one more tells whether a next page exists)."""
        sql = (
            f"SELECT {LOG_COLUMNS} FROM logs {_where(clauses)} ORDER BY timestamp DESC, id DESC LIMIT $limit"
        )
        return log_rows(self.store.cursor().execute(sql, {**params, "limit": limit + 1}))

    def pipeline_logs(self, filters: LogFilter, limit: int, cursor: Cursor | None = None) -> Page:
        """The newest ``limit`` records the column filters (pipeline, run, stage, level, time) pass,
        after ``cursor`` when given.

        One query: DuckDB's top-N pushes its running cut-off into the scan as a timestamp filter,
        skipping older row groups, and its late materialization (enabled up to pages of 1,000 in
        ``exporters.store.connection``) picks the page's row ids from the filter and key columns before
        reading the wide ones, for those rows only. Reading wide rows costs far more than testing a column
        (DuckDB decompresses whole vectors of every column). Search looks in time windows instead
        (``_newest``): its test reads the wide text columns itself, so the scan has to be bounded
        before it starts.
        """
        clauses, params = _after_cursor(*filters.where(), cursor)
        return _page(self._select(clauses, params, limit), limit)

    def search(self, text: str, filters: LogFilter, limit: int, cursor: Cursor | None = None) -> Page:
        """Case-insensitive substring match in the body or in any attribute value (not in keys)."""
        # Lower-cased as DuckDB lower-cases the stored text: Python's lower() differs for some letters
        # (a final sigma, a dotted capital I), and then a needle would never match what is stored. For
        # ASCII the two agree, and asking DuckDB costs more than answering a needle found nowhere.
        needle = text.lower()
        if not text.isascii():
            row = record(self.store.cursor().execute("SELECT lower($text) AS needle", {"text": text}))
            needle = str(row["needle"]) if row else needle
        grams = needle_grams(needle)
        if grams:
            # Only the hours whose text has every gram of the needle can hold a match.
            span = self.store.search_span(grams)
            if span is None:
                return Page([], None)
            since = span.start_ns if filters.since_ns is None else max(filters.since_ns, span.start_ns)
            until = span.end_ns if filters.until_ns is None else min(filters.until_ns, span.end_ns)
            if since >= until:
                return Page([], None)
            # A span reaching the hour of 2262 that ends past any time a query can name has no end.
            filters = replace(filters, since_ns=since, until_ns=until if until < END_OF_TIME_NS else None)
        clauses, params = filters.where()
        clauses.append(_SEARCH_MATCH_PREFILTERED if _survives_json_escaping(text) else _SEARCH_MATCH)
        params["pattern"] = like_pattern(needle)
        clauses, params = _after_cursor(clauses, params, cursor)
        return _page(self._newest(clauses, params, limit, cursor, filters), limit)

    def correlation(self, trace_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """Logs (oldest first) and spans of one trace, and whether the logs were cut at the cap."""
        cur = self.store.cursor()
        # The trace's time window first (a small table), then only the logs inside it.
        window = record(_TRACE_WINDOW.run(cur, {"trace_id": trace_id}))
        rows = []
        if window is not None and window["first_ns"] is not None:
            rows = log_rows(
                _TRACE_LOGS.run(cur, {"trace_id": trace_id, **window, "limit": MAX_TRACE_LOGS + 1})
            )
        truncated = len(rows) > MAX_TRACE_LOGS
        spans = records(_TRACE_SPANS.run(cur, {"trace_id": trace_id}))
        return log_records(rows[:MAX_TRACE_LOGS]), [span_record(s) for s in spans], truncated

    def service_names(self) -> list[str]:
        """Every service name of the stored logs and spans, sorted."""
        return [row["service_name"] for row in records(_SERVICE_NAMES.run(self.store.cursor(), {}))]

    def stats(self, filters: LogFilter, now_ns: int | None = None) -> dict[str, Any]:
        """Counts of the logs the filters pass: by level, by pipeline (the 100 busiest) and over time."""
        clauses, params = filters.where()
        return log_stats(self.store.cursor(), _where(clauses), params, filters.since_ns, filters.until_ns)

    def cleanup(
        self, before_ns: int, pipeline_id: str | None = None, dry_run: bool = False
    ) -> dict[str, int]:
        """Delete logs older than ``before_ns`` and the spans that started before it."""
        params = {"before_ns": before_ns, "pipeline_id": pipeline_id}
        logs, spans = (
            (_COUNT_LOGS_BEFORE, _COUNT_SPANS_BEFORE)
            if dry_run
            else (_DELETE_LOGS_BEFORE, _DELETE_SPANS_BEFORE)
        )
        with self.store.writer() as cur:
            logs_row = logs.run(cur, params).fetchone()
            spans_row = spans.run(cur, params).fetchone()
            if not dry_run and pipeline_id is None:
                # Windows wholly before the cut cover no log any more. With a pipeline filter, other
                # pipelines' logs of the same traces may remain, so their windows stay.
                _DELETE_TRACE_WINDOWS_BEFORE.run(cur, params)
                # Delivery keys are kept as long as records of their time are (see the statement).
                _DELETE_DELIVERIES_BEFORE.run(cur, params)
                # Hours wholly before the cut hold no text any more.
                self.store.drop_search_hours_before(cur, before_ns)
        return {
            "logs": int(logs_row[0]) if logs_row else 0,
            "spans": int(spans_row[0]) if spans_row else 0,
        }

    def retention_cutoff(self, days: float, now_ns: int | None = None) -> int:
        return (time.time_ns() if now_ns is None else now_ns) - int(days * 86400 * NS)


def _where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _page(rows: list[tuple[Any, ...]], limit: int) -> Page:
    """Up to ``limit`` of the newest-first ``rows``; a cursor when the one more asked for came back."""
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = Cursor(rows[-1][_TS], rows[-1][_ID]).encode()
    return Page(log_records(rows), next_cursor)


def _after_cursor(clauses: list[str], params: Params, cursor: Cursor | None) -> tuple[list[str], Params]:
    """Keyset paging on (timestamp, id), newest first: rows arriving meanwhile never shift a page."""
    if cursor is None:
        return clauses, params
    return (
        [
            *clauses,
            "timestamp <= make_timestamp_ns($cursor_ns)",
            "(timestamp < make_timestamp_ns($cursor_ns) OR id < $cursor_id)",
        ],
        {**params, "cursor_ns": cursor.timestamp_ns, "cursor_id": cursor.record_id},
    )


def _survives_json_escaping(text: str) -> bool:
    """True when ``text`` appears verbatim inside JSON-encoded values (no quote, backslash or control)."""
    return not any(ch in '"\\' or ord(ch) < 32 for ch in text)
