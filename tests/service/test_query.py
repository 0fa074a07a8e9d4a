"""The query layer's newest-first paging: windowed look-ups give exactly what one full query gives."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber

from exporters.records import log_table
from exporters.store import TelemetryStore
from service.params import Cursor
from service.query import LogFilter, LogQueries
from tests.helpers import make_record

HOUR = 3_600 * 10**9
NOW = 1_800_000_000 * 10**9


@pytest.fixture(scope="module")
def queries(tmp_path_factory: pytest.TempPathFactory) -> LogQueries:
    """Dense recent records, sparse old ones over two months, and a few in the future."""
    rng = random.Random(3)
    times = [NOW - rng.randrange(0, 2 * HOUR) for _ in range(300)]
    times += [NOW - rng.randrange(2 * HOUR, 60 * 24 * HOUR) for _ in range(200)]
    times += [NOW + rng.randrange(1, HOUR) for _ in range(5)]
    times += [times[0]] * 4  # ties on the timestamp are broken by id
    records = [
        make_record(
            f"{rng.choice(['extracted rows', 'loaded rows', 'idle'])} {i}",
            timestamp=ts,
            severity=rng.choice([SeverityNumber.INFO] * 8 + [SeverityNumber.WARN, SeverityNumber.ERROR]),
            attributes={"pipeline.id": rng.choice(["dense", "dense", "rare"])} if i % 7 else {},
        )
        for i, ts in enumerate(times)
    ]
    store = TelemetryStore(tmp_path_factory.mktemp("query") / "q.duckdb")
    store.insert_logs(log_table(records))
    return LogQueries(store)


def _everything(queries: LogQueries, where: str, params: list[Any]) -> list[str]:
    rows = (
        queries.store.cursor()
        .execute(f"SELECT id FROM logs WHERE {where} ORDER BY timestamp DESC, id DESC", params)
        .fetchall()
    )
    return [format(row[0], "016x") for row in rows]


def _all_pages(fetch: Any, limit: int) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = fetch(limit, cursor)
        ids.extend(log["id"] for log in page.logs)
        assert len(page.logs) <= limit
        if page.next_cursor is None:
            return ids
        cursor = Cursor.decode(page.next_cursor)


@pytest.mark.parametrize("limit", [1, 7, 100, 1000])
@pytest.mark.parametrize(
    ("filters", "where", "params"),
    [
        (LogFilter(), "true", []),
        (LogFilter(pipeline_id="dense"), "pipeline_id = ?", ["dense"]),
        (LogFilter(pipeline_id="rare"), "pipeline_id = ?", ["rare"]),
        (LogFilter(min_severity=17), "severity_number >= 17", []),
        (LogFilter(pipeline_id="nobody"), "pipeline_id = ?", ["nobody"]),
        (
            LogFilter(since_ns=NOW - 30 * HOUR, until_ns=NOW),
            "timestamp >= make_timestamp_ns(?) AND timestamp < make_timestamp_ns(?)",
            [NOW - 30 * HOUR, NOW],
        ),
    ],
)
def test_pages_in_windows_equal_one_full_query(
    queries: LogQueries, filters: LogFilter, where: str, params: list[Any], limit: int
) -> None:
    expected = _everything(queries, where, params)
    got = _all_pages(lambda n, c: queries.pipeline_logs(filters, n, c), limit)
    assert got == expected


@pytest.mark.parametrize("limit", [3, 50])
@pytest.mark.parametrize("text", ["rows", "LOADED", "idle", "absent-word"])
def test_search_pages_equal_one_full_query(queries: LogQueries, text: str, limit: int) -> None:
    expected = _everything(queries, "contains(lower(body), ?)", [text.lower()])
    assert _all_pages(lambda n, c: queries.search(text, LogFilter(), n, c), limit) == expected


def test_sparse_matches_over_a_long_time_widen_to_an_unbounded_query(tmp_path: Path) -> None:
    """One match per window, with a large page: the window grows past the start of time and the
    query falls back to one unbounded query (it used to overflow the timestamp and fail)."""
    store = TelemetryStore(tmp_path / "sparse.duckdb")
    ages = [0, 2 * HOUR, 3 * 24 * HOUR, 100 * 24 * HOUR, 20 * 365 * 24 * HOUR]
    store.insert_logs(log_table([make_record(f"age {age}", timestamp=NOW - age) for age in ages]))
    page = LogQueries(store).pipeline_logs(LogFilter(), 1000)
    assert [log["body"] for log in page.logs] == [f"age {age}" for age in ages]
    assert page.next_cursor is None


def test_a_trace_is_found_whole_across_batches_days_and_cleanups(tmp_path: Path) -> None:
    """Trace look-ups read only the trace's time window: every log of it must still be found."""
    store = TelemetryStore(tmp_path / "traces.duckdb")
    queries = LogQueries(store)
    day = 24 * HOUR
    trace = 0x7ACE
    first = [make_record("starts", timestamp=NOW - 3 * day, trace_id=trace, attributes={"pipeline.id": "a"})]
    later = [make_record("ends", timestamp=NOW, trace_id=trace, attributes={"pipeline.id": "b"})]
    noise = [make_record(f"other {i}", timestamp=NOW - i * HOUR, trace_id=0xBEEF + i) for i in range(50)]
    store.insert_logs(log_table(first + noise))
    store.insert_logs(log_table(later))
    store.insert_logs(log_table(first))  # sent again: stored once, the window unchanged
    logs, _, _ = queries.correlation(f"{trace:032x}")
    assert [log["body"] for log in logs] == ["starts", "ends"]
    # Pipeline a's old logs go; b's log of the same trace stays findable.
    queries.cleanup(NOW - day, pipeline_id="a")
    assert [log["body"] for log in queries.correlation(f"{trace:032x}")[0]] == ["ends"]
    # Everything before the cut goes, windows included; later logs are still found.
    queries.cleanup(NOW - HOUR // 2)
    assert [log["body"] for log in queries.correlation(f"{trace:032x}")[0]] == ["ends"]
    assert queries.correlation(f"{0xBEEF + 10:032x}")[0] == []


def test_a_store_from_before_trace_windows_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    store = TelemetryStore(path)
    store.insert_logs(log_table([make_record("old line", timestamp=NOW, trace_id=0x01D)]))
    with store.writer() as cur:  # back to schema version 2, as an older pipetrace left it
        cur.execute("DROP TABLE trace_windows")
        cur.execute("DELETE FROM schema_version WHERE version = 3")
    store.close()
    reopened = TelemetryStore(path)
    assert reopened.schema_version == 3
    logs, _, _ = LogQueries(reopened).correlation(f"{0x01D:032x}")
    assert [log["body"] for log in logs] == ["old line"]
