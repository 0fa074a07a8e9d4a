"""The search index: it narrows a search to the hours that can hold a match and never hides one."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from exporters.records import LOG_ROW_SCHEMA, LogRows, log_table
from exporters.store import TelemetryStore
from exporters.store.queries import LogFilter, LogQueries
from exporters.store.search_index import (
    BLOCK_NS,
    SearchIndex,
    TimeSpan,
    grams_sql,
    needle_grams,
    text_grams,
)
from tests.helpers import bodies, make_record

NOW = 1_800_000_000 * 10**9 // BLOCK_NS * BLOCK_NS  # the start of an hour


def test_needle_grams_are_the_three_letter_sequences_of_its_letter_runs() -> None:
    assert needle_grams("load failed") == {"loa", "oad", "fai", "ail", "ile", "led"}
    assert needle_grams("page=42 of rows!") == {"pag", "age", "row", "ows"}
    assert needle_grams("42 of") == set()  # nothing to narrow by: every hour can hold it
    assert needle_grams("héllo") == {"llo"}  # non-ASCII letters split runs, like the index does


def test_the_in_memory_index_answers_with_the_span_of_blocks_holding_every_gram() -> None:
    index = SearchIndex()
    index._blocks, index._base = {}, 0  # loaded, empty
    index.add([(10, "abc"), (12, "abc"), (12, "bcd"), (15, "bcd")])
    assert index.span({"abc"}) == TimeSpan(10 * BLOCK_NS, 13 * BLOCK_NS)
    assert index.span({"abc", "bcd"}) == TimeSpan(12 * BLOCK_NS, 13 * BLOCK_NS)
    assert index.span({"abc", "zzz"}) is None
    index.add([(3, "zzz"), (3, "abc")])  # older than anything before: the origin moves back
    assert index.span({"abc"}) == TimeSpan(3 * BLOCK_NS, 13 * BLOCK_NS)
    assert index.span({"bcd"}) == TimeSpan(12 * BLOCK_NS, 16 * BLOCK_NS)
    with pytest.raises(ValueError, match="no grams"):
        index.span(set())


WORDS = ["extract", "load", "Normalize", "rows", "ORDERS", "customer_id", "K\u212aelvin", "café", "x"]


def _random_text(rng: random.Random) -> str:
    parts = [rng.choice(WORDS) for _ in range(rng.randrange(1, 5))]
    parts.append(str(rng.randrange(10**6)))
    return rng.choice([" ", "-", "/", ", ", "\t"]).join(parts)


@dataclass
class Filled:
    queries: LogQueries
    texts: list[tuple[str, list[str]]]  # each record's body and attribute values


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Filled:
    """Records over 30 hours with words in bodies and attribute values; one word only long ago."""
    rng = random.Random(11)
    records = [
        make_record(
            _random_text(rng),
            timestamp=NOW - rng.randrange(30 * BLOCK_NS),
            attributes={"pipeline.id": rng.choice(["orders", "users"]), "note": _random_text(rng)},
        )
        for _ in range(600)
    ]
    records.append(make_record("a pelican flew by", timestamp=NOW - 29 * BLOCK_NS))
    store = TelemetryStore(tmp_path_factory.mktemp("search") / "s.duckdb")
    for start in range(0, len(records), 100):  # several inserts, as batches arrive
        store.insert_logs(log_table(records[start : start + 100]))
    texts = [
        (str(r.log_record.body), [str(v) for v in (r.log_record.attributes or {}).values()]) for r in records
    ]
    return Filled(LogQueries(store), texts)


@pytest.mark.parametrize(
    "needle",
    [
        "EXTRACT",
        "ormal",
        "rows, orders",
        "customer_id",
        "kelvin",
        "\u212aelvin",
        "café",
        "caf",
        "pelican",
        "pelicans",
        "kangaroo",
        "ders/cus",
        "users",
        "12",
        "load\tNormalize",
    ],
)
def test_indexed_search_finds_exactly_the_matching_records(filled: Filled, needle: str) -> None:
    found = filled.queries.search(needle, LogFilter(), 1000).logs
    lowered = needle.lower()
    expected = [
        body for body, values in filled.texts if any(lowered in text.lower() for text in [body, *values])
    ]
    assert sorted(bodies(found)) == sorted(expected)


def test_a_needle_found_nowhere_reads_no_rows(filled: Filled) -> None:
    index = filled.queries.store.search_index()
    assert index.span(needle_grams("kangaroo")) is None
    span = index.span(needle_grams("pelican"))  # the one hour that holds it, nothing more
    assert span == TimeSpan(NOW - 29 * BLOCK_NS, NOW - 28 * BLOCK_NS)


def test_new_records_and_cleanup_keep_the_index_true(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "live.duckdb")
    queries = LogQueries(store)
    store.insert_logs(log_table([make_record("walrus seen", timestamp=NOW)]))
    assert bodies(queries.search("walrus", LogFilter(), 10).logs) == ["walrus seen"]  # loads the index
    # After the index is in memory: a new hour, and a record older than anything before.
    store.insert_logs(log_table([make_record("narwhal seen", timestamp=NOW + 5 * BLOCK_NS)]))
    store.insert_logs(log_table([make_record("ancient narwhal", timestamp=NOW - 50 * BLOCK_NS)]))
    store.insert_logs(log_table([make_record("puffin", timestamp=NOW - BLOCK_NS // 4)]))
    assert bodies(queries.search("NARWHAL", LogFilter(), 10).logs) == ["narwhal seen", "ancient narwhal"]
    # Cleanup drops the hours wholly before the cut from the table and the copy in memory.
    queries.cleanup(NOW - BLOCK_NS // 2)
    assert bodies(queries.search("narwhal", LogFilter(), 10).logs) == ["narwhal seen"]
    blocks = [row[0] for row in store.cursor().execute("SELECT DISTINCT block FROM search_grams").fetchall()]
    assert sorted(blocks) == [NOW // BLOCK_NS - 1, NOW // BLOCK_NS, NOW // BLOCK_NS + 5]
    assert store.search_index().span(needle_grams("ancient")) is None
    assert bodies(queries.search("puffin", LogFilter(), 10).logs) == ["puffin"]  # the cut's own hour stays


def test_filters_and_the_index_narrow_together(filled: Filled) -> None:
    # "pelican" is 29 hours old: a window of the last day holds no match, without a query.
    last_day: dict[str, Any] = {"since_ns": NOW - 24 * BLOCK_NS, "until_ns": NOW}
    assert filled.queries.search("pelican", LogFilter(**last_day), 10).logs == []
    old = LogFilter(since_ns=NOW - 30 * BLOCK_NS, until_ns=NOW - 28 * BLOCK_NS)
    assert bodies(filled.queries.search("pelican", old, 10).logs) == ["a pelican flew by"]


def test_two_store_objects_of_one_file_share_the_index(tmp_path: Path) -> None:
    """DuckDB lets one process open a file twice; what one store writes, the other's search finds."""
    writer, reader = TelemetryStore(tmp_path / "two.duckdb"), TelemetryStore(tmp_path / "two.duckdb")
    writer.insert_logs(log_table([make_record("first heron", timestamp=NOW)]))
    queries = LogQueries(reader)
    assert bodies(queries.search("heron", LogFilter(), 10).logs) == ["first heron"]  # loaded here
    writer.insert_logs(log_table([make_record("second heron, an egret", timestamp=NOW + 3 * BLOCK_NS)]))
    assert bodies(queries.search("egret", LogFilter(), 10).logs) == ["second heron, an egret"]


def test_the_shared_store_and_a_second_store_of_its_file_search_alike(tmp_path: Path) -> None:
    shared = TelemetryStore.shared(tmp_path / "shared.duckdb")  # as the service and its exporters open it
    other = TelemetryStore(tmp_path / "shared.duckdb")
    shared.insert_logs(log_table([make_record("a lone ibis", timestamp=NOW)]))
    assert bodies(LogQueries(other).search("ibis", LogFilter(), 10).logs) == ["a lone ibis"]
    shared.close()


@pytest.mark.parametrize("length", [3, 4, 63, 64, 65, 66, 127, 1_000])
def test_long_letter_runs_give_every_gram(length: int) -> None:
    """Long runs are cut into overlapping pieces (linear, not quadratic, in their length): the grams
    must be exactly those of the whole run."""
    rng = random.Random(length)
    run = "".join(rng.choice("abcdefghij") for _ in range(length))
    source = "(SELECT make_timestamp_ns(0) AS timestamp, $run AS body, NULL AS attributes)"
    rows = duckdb.execute(grams_sql(source), {"run": run}).fetchall()
    assert {gram for _, gram in rows} == needle_grams(run)


def test_the_insert_indexes_the_grams_that_the_migration_indexes(tmp_path: Path) -> None:
    """``sql/insert_search_grams.sql`` writes ``grams_sql`` out whole over the batch's rows; the index
    a store builds as it inserts must be the one migration 4 builds from the stored logs."""
    rng = random.Random(4)
    words = ["heron", "Egret", "ibis-stork", "x9y", "ÄöÜ", "a" * 130, "spoonbill,crane"]
    records = [
        make_record(
            " ".join(rng.choice(words) for _ in range(4)),
            timestamp=NOW + i * BLOCK_NS // 7,
            attributes={"k": rng.choice(words), "n": i, "nested": {"w": rng.choice(words)}},
        )
        for i in range(40)
    ]
    store = TelemetryStore(tmp_path / "grams.duckdb")
    store.insert_logs(log_table(records[:25]))
    store.insert_logs(log_table(records[25:]))
    cur = store.cursor()
    indexed = cur.execute("SELECT block, gram FROM search_grams ORDER BY ALL").fetchall()
    rebuilt = cur.execute(f"SELECT DISTINCT block, gram FROM ({grams_sql('logs')}) ORDER BY ALL").fetchall()
    assert indexed == rebuilt and len(indexed) > 20
    store.close()


def _through_sql(rows: LogRows) -> LogRows:
    """The same batch without the exporter's short cuts: the store derives everything in SQL."""
    return LogRows(rows.columns.select(LOG_ROW_SCHEMA.names), rows.attributes, rows.key)


def test_the_grams_found_in_python_are_those_found_in_sql(tmp_path: Path) -> None:
    """A batch within one hour has its grams found by ``text_grams`` (no statement when none is
    new); the index must be the one ``sql/insert_search_grams.sql`` writes for the same batches."""
    values: list[Any] = [
        "Heron",
        "egret-IBIS",
        42,
        2.5,
        True,
        ["spoonbill", {"Crane": "stork", "n": None}],
        {"kvlist": ["flamingo"]},
        b"\x00\x01bytes",
        float("nan"),
        "x" * 3 + "y" * 130,
    ]
    rng = random.Random(7)
    batches = [
        [
            make_record(
                rng.choice(["Loaded 5 rows of PELICANS", "a b", "", "quail/plover"]),
                timestamp=NOW + hour * BLOCK_NS + i,
                attributes={"k": rng.choice(values), "pipeline.id": rng.choice(["orders", "users"])},
            )
            for i in range(8)
        ]
        for hour in range(12)
    ]
    fast, slow = TelemetryStore(tmp_path / "fast.duckdb"), TelemetryStore(tmp_path / "slow.duckdb")
    found_in_python = 0
    for records in batches:
        rows = log_table(records)
        found_in_python += rows.search_text is not None and text_grams(rows.search_text) is not None
        fast.insert_logs(rows)
        slow.insert_logs(_through_sql(rows))
    assert found_in_python >= 6  # most batches took the short cut (bytes, None and NaN do not)
    query = "SELECT block, gram, count(*) FROM search_grams GROUP BY ALL ORDER BY ALL"
    in_python = fast.cursor().execute(query).fetchall()
    assert in_python == slow.cursor().execute(query).fetchall()
    assert {count for _, _, count in in_python} == {1}  # each pair once
    fast.close()
    slow.close()


def test_a_batch_with_nothing_new_adds_nothing_and_a_cleaned_hour_is_indexed_again(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "hours.duckdb")
    queries = LogQueries(store)
    store.insert_logs(log_table([make_record("walrus one", timestamp=NOW)]))
    count = "SELECT count(*) FROM search_grams"
    before = store.cursor().execute(count).fetchone()
    store.insert_logs(log_table([make_record("walrus one", timestamp=NOW + 1)]))  # same words, same hour
    assert store.cursor().execute(count).fetchone() == before
    # Cleanup drops the hour; a record that arrives for it afterwards has its grams written again.
    queries.cleanup(NOW + BLOCK_NS)
    assert store.cursor().execute(count).fetchone() == (0,)
    store.insert_logs(log_table([make_record("walrus two", timestamp=NOW + 2)]))
    assert bodies(queries.search("walrus", LogFilter(), 10).logs) == ["walrus two"]
    store.close()


def test_blocks_cleanup_dropped_are_never_candidates_and_come_back_when_written_again() -> None:
    index = SearchIndex(clock=lambda: 400 * BLOCK_NS)  # every block here is near: kept as bits
    index._blocks, index._base = {}, 0  # loaded, empty
    index.add([(100, "abc"), (103, "abc"), (110, "abc"), (400, "bcd"), (100, "bcd")])
    index.forget_before(104)  # within a week of blocks: masked, not yet shifted out
    assert index._base == 100  # a cleanup does not rewrite every gram's bits
    assert index.span({"abc"}) == TimeSpan(110 * BLOCK_NS, 111 * BLOCK_NS)
    assert index.span({"bcd"}) == TimeSpan(400 * BLOCK_NS, 401 * BLOCK_NS)
    index.add([(101, "abc")])  # a record of a dropped hour stored again: found, the old ones not
    assert index.span({"abc"}) == TimeSpan(101 * BLOCK_NS, 111 * BLOCK_NS)
    assert index.span({"abc", "bcd"}) is None
    index.forget_before(105)
    index.forget_before(390)  # a week and more: shifted out
    assert index.span({"abc"}) is None
    assert index.span({"bcd"}) == TimeSpan(400 * BLOCK_NS, 401 * BLOCK_NS)
    assert index._far == {} and index._base == 390  # it was the bits, shifted
    index.add([(200, "abc")])
    assert index.span({"abc"}) == TimeSpan(200 * BLOCK_NS, 201 * BLOCK_NS)
    assert index.span({"bcd"}) == TimeSpan(400 * BLOCK_NS, 401 * BLOCK_NS)
