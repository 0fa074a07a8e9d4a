"""The log routes' statistics (``/api/logs/stats``): counts by level, by pipeline and over time.

The three counts are one scan: ``GROUP BY GROUPING SETS`` answers them together, and Python sums and
orders the groups. As three statements (one per count) the last hour of the store benchmark took half
as long again, each statement paying its own planning and scan of the same rows (README,
Performance). The timeline's bucket width depends on the time range; when the filters leave it open,
a first statement reads the range with the level counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from exporters.store.statements import records
from service.params import LEVELS, NS, format_time, level_name

# Timeline bucket widths to choose from, smallest first; the first giving at most MAX_BUCKETS wins.
BUCKET_SECONDS = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BUCKETS = 120
MAX_PIPELINES = 100

# ``grouping()`` of (severity_number, pipeline_id, bucket): a bit set for each column a set leaves out.
_BY_LEVEL, _BY_PIPELINE, _BY_BUCKET = 0b011, 0b101, 0b010


def log_stats(
    cur: duckdb.DuckDBPyConnection,
    where: str,
    params: Mapping[str, Any],
    since_ns: int | None,
    until_ns: int | None,
) -> dict[str, Any]:
    """Totals, levels, the 100 busiest pipelines and a timeline of the logs ``where`` selects
    (``since_ns`` / ``until_ns``: the time filters given, which bound the timeline)."""
    sets = ["(severity_number)", "(pipeline_id)", "(bucket, severity_number)"]
    level_rows: list[dict[str, Any]] = []
    lo, hi = since_ns, until_ns
    if lo is None or hi is None:
        level_rows = records(
            cur.execute(
                f"""SELECT severity_number, count(*) AS n, epoch_ns(min(timestamp)) AS first_ns,
                           epoch_ns(max(timestamp)) AS last_ns
                    FROM logs {where} GROUP BY ALL""",
                params,
            )
        )
        if not level_rows:
            return _answer([], [], None, [])
        lo = min(row["first_ns"] for row in level_rows) if lo is None else lo
        hi = max(row["last_ns"] for row in level_rows) + 1 if hi is None else hi
        sets = sets[1:]
    span_seconds = max(1, (hi - lo) // NS)
    width = next((w for w in BUCKET_SECONDS if span_seconds / w <= MAX_BUCKETS), BUCKET_SECONDS[-1])
    groups = records(
        cur.execute(
            f"""SELECT grouping(severity_number, pipeline_id, bucket) AS grouped, severity_number,
                       pipeline_id, bucket, count(*) AS n,
                       count(*) FILTER (severity_number >= $error_level) AS errors
                FROM (SELECT severity_number, pipeline_id,
                             (epoch_ns(timestamp) // $width_ns) * $width_ns AS bucket
                      FROM logs {where})
                GROUP BY GROUPING SETS ({", ".join(sets)})""",
            {**params, "width_ns": width * NS, "error_level": LEVELS["ERROR"]},
        )
    )
    if not level_rows:
        level_rows = [row for row in groups if row["grouped"] == _BY_LEVEL]
    pipelines = [row for row in groups if row["grouped"] == _BY_PIPELINE]
    buckets = [row for row in groups if row["grouped"] == _BY_BUCKET]
    return _answer(level_rows, pipelines, width, buckets)


def _answer(
    level_rows: list[dict[str, Any]],
    pipeline_rows: list[dict[str, Any]],
    width: int | None,
    bucket_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    by_level: dict[str, int] = {}
    for row in level_rows:
        name = level_name(row["severity_number"])
        by_level[name] = by_level.get(name, 0) + int(row["n"])
    total = sum(by_level.values())
    errors = sum(row["n"] for row in level_rows if (row["severity_number"] or 0) >= LEVELS["ERROR"])
    # Busiest first, then by id with no id last (SQL's ORDER BY n DESC, pipeline_id: UTF-8 sorts as
    # code points do).
    pipeline_rows.sort(key=lambda row: (-row["n"], row["pipeline_id"] is None, row["pipeline_id"] or ""))
    buckets: dict[int, dict[str, int]] = {}
    for row in sorted(bucket_rows, key=lambda row: int(row["bucket"])):
        counts = buckets.setdefault(int(row["bucket"]), {})
        name = level_name(row["severity_number"])
        counts[name] = counts.get(name, 0) + int(row["n"])
    return {
        "total": total,
        "by_level": by_level,
        "by_pipeline": [
            {"pipeline_id": row["pipeline_id"], "count": int(row["n"]), "errors": int(row["errors"])}
            for row in pipeline_rows[:MAX_PIPELINES]
        ],
        "error_rate": errors / total if total else 0.0,
        "timeline": {
            "bucket_seconds": width,
            "buckets": [
                {"start": format_time(start), "total": sum(counts.values()), "by_level": counts}
                for start, counts in buckets.items()
            ],
        }
        if total
        else {"bucket_seconds": None, "buckets": []},
    }
