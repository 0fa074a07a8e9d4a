"""The query layer's newest-first paging gives exactly what one full query gives, page by page."""

from __future__ import annotations

import gzip
import random
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.resources import Resource

from exporters import anyvalue
from exporters.records import LOG_ROW_SCHEMA, LogRows, log_table
from exporters.store import TelemetryStore
from exporters.store.queries import LogFilter, LogQueries
from exporters.store.schema import LATEST_VERSION, migrate
from service.params import MAX_LIMIT, Cursor
from tests.helpers import bodies, make_record

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
def test_filtered_pages_equal_one_full_query(
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


def _bulk_rows(count: int, start_ns: int) -> LogRows:
    """``count`` records a second apart from ``start_ns``, built in SQL: enough for several row groups
    without making SDK objects one by one."""
    table = duckdb.sql(
        f"""SELECT make_timestamp_ns({start_ns} + i * 1000000000) AS timestamp, false AS time_absent,
                   make_timestamp_ns({start_ns} + i * 1000000000 + 5) AS observed_timestamp,
                   md5((i // 50)::VARCHAR) AS trace_id, left(md5(i::VARCHAR), 16) AS span_id,
                   1 AS flags, NULL AS body_value, NULL AS scope_schema_url, NULL AS scope_attributes,
                   0 AS scope_dropped_attributes_count, false AS typed_values, 0 AS dropped_attributes_count,
                   NULL AS resource_schema_url, 0 AS resource_dropped_attributes_count,
                   CASE WHEN i % 37 = 0 THEN 'ERROR' ELSE 'INFO' END AS severity_text,
                   CASE WHEN i % 37 = 0 THEN 17 ELSE 9 END AS severity_number, 'bulk' AS service_name,
                   'record ' || i AS body, NULL AS event_name, 'tests' AS scope_name,
                   NULL AS scope_version, '{{"service.name":"bulk"}}' AS resource_attributes,
                   (i % 5000)::INTEGER AS row,
                   '{{"pipeline.id":"p' || (i % 3) || '","n":' || i || '}}' AS attributes
            FROM range({count}) AS t(i)"""
    ).arrow()
    if not isinstance(table, pa.Table):  # DuckDB 1.4+ returns a reader
        table = table.read_all()
    attributes = "[" + ",".join(table.column("attributes").to_pylist()) + "]"
    return LogRows(table.select(LOG_ROW_SCHEMA.names).cast(LOG_ROW_SCHEMA), attributes)


def test_pages_over_many_row_groups_after_a_cleanup_equal_one_full_query(tmp_path: Path) -> None:
    """Filtered pages are one top-N query that DuckDB answers by skipping row groups and reading the
    kept rows by row id (late materialization): checked across row groups (122,880 rows each), with
    rows deleted by a cleanup and the file checkpointed."""
    store = TelemetryStore(tmp_path / "bulk.duckdb")
    start = NOW - 400_000 * 10**9
    for offset in range(0, 400_000, 5_000):
        rows = _bulk_rows(5_000, start + offset * 10**9)
        store.insert_logs(rows)
    queries = LogQueries(store)
    queries.cleanup(start + 150_000 * 10**9)  # the first row group and part of the second
    store.cursor().execute("CHECKPOINT")
    for filters, where, params in [
        (LogFilter(pipeline_id="p1"), "pipeline_id = ?", ["p1"]),
        (LogFilter(pipeline_id="p2", min_severity=17), "pipeline_id = ? AND severity_number >= 17", ["p2"]),
    ]:
        expected = _everything(queries, where, params)
        assert len(expected) > 2_000
        got: list[str] = []
        cursor = None
        for limit in (1000, 100, 1000):  # the first pages, then one deep page from a cursor
            page = queries.pipeline_logs(filters, limit, cursor)
            got.extend(log["id"] for log in page.logs)
            assert page.next_cursor is not None
            cursor = Cursor.decode(page.next_cursor)
        assert got == expected[: len(got)]
        deep = Cursor(*_key_of(queries, expected[-50]))
        tail = queries.pipeline_logs(filters, 1000, deep)
        assert [log["id"] for log in tail.logs] == expected[-49:]
        assert tail.next_cursor is None


def _key_of(queries: LogQueries, record_id: str) -> tuple[int, int]:
    row = (
        queries.store.cursor()
        .execute("SELECT epoch_ns(timestamp), id FROM logs WHERE id = ?", [int(record_id, 16)])
        .fetchone()
    )
    assert row is not None
    return int(row[0]), int(row[1])


def test_the_largest_page_is_still_read_by_late_materialization(tmp_path: Path) -> None:
    """The store's DuckDB setting must cover the routes' largest page and its look-ahead row, or pages
    silently fall back to reading every column of every vector holding a match."""
    cursor = TelemetryStore(tmp_path / "setting.duckdb").cursor()
    row = cursor.execute("SELECT current_setting('late_materialization_max_rows')").fetchone()
    assert row is not None and int(row[0]) >= MAX_LIMIT + 1


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
    store.insert_logs(log_table(first + noise))  # sent again: stored once, the window unchanged
    logs, _, _ = queries.correlation(f"{trace:032x}")
    assert [log["body"] for log in logs] == ["starts", "ends"]
    # Pipeline a's old logs go; b's log of the same trace stays findable.
    queries.cleanup(NOW - day, pipeline_id="a")
    assert [log["body"] for log in queries.correlation(f"{trace:032x}")[0]] == ["ends"]
    # Everything before the cut goes, windows included; later logs are still found.
    queries.cleanup(NOW - HOUR // 2)
    assert [log["body"] for log in queries.correlation(f"{trace:032x}")[0]] == ["ends"]
    assert queries.correlation(f"{0xBEEF + 10:032x}")[0] == []


def test_a_store_of_schema_version_2_is_migrated_with_its_rows(tmp_path: Path) -> None:
    """A file an older pipetrace left: trace windows and the search index are built from its rows,
    and its attributes, stored whole, read back whole."""
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        assert migrate(con, target=2) == 2
        con.execute(
            """INSERT INTO logs (id, timestamp, trace_id, body, pipeline_id, attributes)
               VALUES (1, make_timestamp_ns(?), ?, 'old line', 'p1', '{"pipeline.id":"p1","n":1}')""",
            [NOW, f"{0x01D:032x}"],
        )
    store = TelemetryStore(path)
    assert store.schema_version == LATEST_VERSION == 10
    queries = LogQueries(store)
    logs, _, _ = queries.correlation(f"{0x01D:032x}")
    assert [(log["body"], log["attributes"]) for log in logs] == [
        ("old line", {"pipeline.id": "p1", "n": {"intValue": "1"}})
    ]
    assert bodies(queries.search("LINE", LogFilter(), 10).logs) == ["old line"]
    assert bodies(queries.search("p1", LogFilter(), 10).logs) == ["old line"]  # an attribute value
    assert queries.search("lion", LogFilter(), 10).logs == []


def test_promoted_attributes_are_stored_once_and_read_back_as_sent(tmp_path: Path) -> None:
    """String pipeline attributes live only in their columns; every record reads back as it was sent."""
    store = TelemetryStore(tmp_path / "promoted.duckdb")
    sent = {
        "all three": {"pipeline.id": "p1", "pipeline.run_id": "r1", "pipeline.stage": "load", "rows": 5},
        "a number": {"pipeline.id": 7, "pipeline.stage": "extract"},
        "none": {"other": "x"},
        "only in the resource": {},
    }
    resource = Resource.create({"service.name": "svc", "pipeline.id": "from-resource"})
    store.insert_logs(
        log_table(
            [
                make_record(body, timestamp=NOW, attributes=attrs, resource=resource)
                for body, attrs in sent.items()
            ]
        )
    )
    queries = LogQueries(store)
    logs = {log["body"]: log for log in queries.pipeline_logs(LogFilter(), 10).logs}
    assert {body: log["attributes"] for body, log in logs.items()} == {
        body: anyvalue.typed_map(attrs) for body, attrs in sent.items()
    }
    assert (
        logs["a number"]["pipeline_id"] == "7"
        and logs["only in the resource"]["pipeline_id"] == "from-resource"
    )
    stored = dict(store.cursor().execute("SELECT body, attributes FROM logs").fetchall())
    assert stored["all three"] == '{"rows":5}'  # the three strings are in their columns only
    assert stored["a number"] == '{"pipeline.id":7}'  # not a string: kept as sent
    # Search looks in attribute values, wherever they are kept, and not in the resource.
    assert bodies(queries.search("R1", LogFilter(), 10).logs) == ["all three"]
    assert bodies(queries.search("from-resource", LogFilter(), 10).logs) == []


def test_a_file_written_by_schema_version_5_is_migrated_and_answers_as_before(tmp_path: Path) -> None:
    """``tests/data/store-v5.duckdb.gz`` was written by pipetrace at b3c4bb8 (schema 5, record ids
    that were content hashes, attributes as plain JSON) through its own exporters."""
    path = tmp_path / "v5.duckdb"
    fixture = Path(__file__).parents[2] / "data" / "store-v5.duckdb.gz"
    with gzip.open(fixture) as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    store = TelemetryStore(path)
    assert store.schema_version == LATEST_VERSION
    queries = LogQueries(store)
    trace = "6738ec32ebcbfdf564703cd399846fb9"
    logs, spans, truncated = queries.correlation(trace)
    assert [log["body"] for log in logs] == ["extract started", "slow source", "load failed: timeout"]
    assert [span["name"] for span in spans] == ["extract"] and not truncated
    started = logs[0]
    assert started["timestamp"] == started["sort_timestamp"] is not None  # old rows had their own times
    assert (started["pipeline_id"], started["run_id"], started["stage"]) == ("orders", "run-1", "extract")
    assert started["attributes"] == {
        "rows": {"intValue": "3"},
        "ratio": {"doubleValue": 0.25},
        "tags": {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}},
        "pipeline.run_id": "run-1",
        "pipeline.stage": "extract",
    }
    assert started["flags"] == 3 and started["resource"]["service.name"] == "v5-writer"
    assert bodies(queries.search("TIMEOUT", LogFilter(), 10).logs) == ["load failed: timeout"]
    assert bodies(queries.pipeline_logs(LogFilter(pipeline_id="orders", min_severity=13), 10).logs) == [
        "load failed: timeout",
        "slow source",
    ]
    # New deliveries go in beside the old rows; the old ones are still found.
    store.insert_logs(
        log_table([make_record("after the upgrade", timestamp=time.time_ns(), trace_id=int(trace, 16))])
    )
    assert [log["body"] for log in queries.correlation(trace)[0]][-1] == "after the upgrade"
    store.close()
