"""Statistics answered in one grouping scan equal those of one statement per count (the way they were
computed before, kept here as the reference)."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pytest

from exporters.records import LOG_ROW_SCHEMA, LogRows
from exporters.store import TelemetryStore
from exporters.store.queries import LogFilter, LogQueries
from service.params import LEVELS, NS, format_time, level_name

START = 1_800_000_000 * NS
BUCKETS = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)


def _rows(count: int) -> LogRows:
    """Records over about nine days with 130 pipelines (ties in their counts, one pipeline absent),
    every severity and two outside OTLP's 1..24."""
    table = duckdb.sql(
        f"""SELECT make_timestamp_ns({START} + i * 777000000000 + i % 7) AS timestamp,
                   false AS time_absent, make_timestamp_ns({START} + i * 777000000000) AS observed_timestamp,
                   NULL AS trace_id, NULL AS span_id, 0 AS flags, NULL AS body_value,
                   NULL AS scope_schema_url, NULL AS scope_attributes, 0 AS scope_dropped_attributes_count,
                   false AS typed_values, 0 AS dropped_attributes_count, NULL AS resource_schema_url,
                   0 AS resource_dropped_attributes_count, 'x' AS severity_text,
                   [0, 1, 5, 9, 9, 9, 13, 17, 18, 21, 24, 30][1 + i % 12] AS severity_number,
                   'svc' AS service_name, 'record ' || i AS body, NULL AS event_name, NULL AS scope_name,
                   NULL AS scope_version, '{{}}' AS resource_attributes, i::INTEGER AS row,
                   CASE WHEN i % 11 = 0 THEN '{{}}'
                        ELSE '{{"pipeline.id":"p' || (i * 7 % 130) || '"}}' END AS attributes
            FROM range({count}) AS t(i)"""
    ).arrow()
    if not isinstance(table, pa.Table):  # DuckDB 1.4+ returns a reader
        table = table.read_all()
    attributes = "[" + ",".join(table.column("attributes").to_pylist()) + "]"
    return LogRows(table.select(LOG_ROW_SCHEMA.names).cast(LOG_ROW_SCHEMA), attributes)


@pytest.fixture(scope="module")
def queries(tmp_path_factory: pytest.TempPathFactory) -> LogQueries:
    store = TelemetryStore(tmp_path_factory.mktemp("stats") / "stats.duckdb")
    store.insert_logs(_rows(1000))
    return LogQueries(store)


def _reference(queries: LogQueries, filters: LogFilter) -> dict[str, Any]:
    """The statistics as four statements computed them: levels, pipelines, time range, timeline."""
    clauses, params = filters.where()
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    cur = queries.store.cursor()

    def rows(sql: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        result = cur.execute(sql, values)
        names = [column[0] for column in result.description or ()]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    levels = rows(f"SELECT severity_number, count(*) AS n FROM logs {where} GROUP BY ALL", params)
    by_level: dict[str, int] = {}
    for row in levels:
        name = level_name(row["severity_number"])
        by_level[name] = by_level.get(name, 0) + row["n"]
    total = sum(by_level.values())
    errors = sum(row["n"] for row in levels if (row["severity_number"] or 0) >= LEVELS["ERROR"])
    pipelines = rows(
        f"""SELECT pipeline_id, count(*) AS n, count(*) FILTER (severity_number >= 17) AS errors
            FROM logs {where} GROUP BY pipeline_id ORDER BY n DESC, pipeline_id LIMIT 100""",
        params,
    )
    timeline: dict[str, Any] = {"bucket_seconds": None, "buckets": []}
    if total:
        lo, hi = filters.since_ns, filters.until_ns
        if lo is None or hi is None:
            (bounds,) = rows(
                f"""SELECT epoch_ns(min(timestamp)) AS lo, epoch_ns(max(timestamp)) AS hi
                    FROM logs {where}""",
                params,
            )
            lo = bounds["lo"] if lo is None else lo
            hi = bounds["hi"] + 1 if hi is None else hi
        width = next((w for w in BUCKETS if max(1, (hi - lo) // NS) / w <= 120), BUCKETS[-1])
        buckets: dict[int, dict[str, int]] = {}
        for row in rows(
            f"""SELECT (epoch_ns(timestamp) // $width_ns) * $width_ns AS bucket, severity_number,
                       count(*) AS n
                FROM logs {where} GROUP BY ALL ORDER BY bucket""",
            {**params, "width_ns": width * NS},
        ):
            counts = buckets.setdefault(row["bucket"], {})
            name = level_name(row["severity_number"])
            counts[name] = counts.get(name, 0) + row["n"]
        timeline = {
            "bucket_seconds": width,
            "buckets": [
                {"start": format_time(start), "total": sum(counts.values()), "by_level": counts}
                for start, counts in sorted(buckets.items())
            ],
        }
    return {
        "total": total,
        "by_level": by_level,
        "by_pipeline": [
            {"pipeline_id": row["pipeline_id"], "count": row["n"], "errors": row["errors"]}
            for row in pipelines
        ],
        "error_rate": errors / total if total else 0.0,
        "timeline": timeline,
    }


DAY = 86400 * NS


@pytest.mark.parametrize(
    "filters",
    [
        LogFilter(),
        LogFilter(since_ns=START + 2 * DAY),
        LogFilter(until_ns=START + 3 * DAY),
        LogFilter(since_ns=START + DAY, until_ns=START + DAY + 3600 * NS),
        LogFilter(since_ns=START + DAY, until_ns=START + 5 * DAY, min_severity=17),
        LogFilter(pipeline_id="p7"),
        LogFilter(pipeline_id="p7", since_ns=START, until_ns=START + 20 * DAY),
        LogFilter(since_ns=START - DAY, until_ns=START),  # nothing in it
        LogFilter(pipeline_id="absent"),
    ],
)
def test_stats_equal_one_statement_per_count(queries: LogQueries, filters: LogFilter) -> None:
    stats = queries.stats(filters)
    reference = _reference(queries, filters)
    assert stats == reference
    # Dicts compare without order; the lists' orders are part of the answer.
    assert [b["start"] for b in stats["timeline"]["buckets"]] == [
        b["start"] for b in reference["timeline"]["buckets"]
    ]
    if filters == LogFilter():
        assert len(stats["by_pipeline"]) == 100  # cut at the 100 busiest of 131 groups
        assert any(row["pipeline_id"] is None for row in stats["by_pipeline"])
        assert {level for level in stats["by_level"]} >= {"UNSPECIFIED", "FATAL"}
