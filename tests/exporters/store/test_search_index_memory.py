"""The search index's memory is bounded whatever times records carry, and by its budget."""

from __future__ import annotations

import logging
import random
import string
import time
import tracemalloc
from pathlib import Path

import pytest

from exporters.records import log_table
from exporters.settings import ExporterSettings
from exporters.store import TelemetryStore
from exporters.store.queries import LogFilter, LogQueries
from exporters.store.search_index import BLOCK_NS, END_OF_TIME_NS, SearchIndex, TimeSpan
from tests.helpers import bodies, make_record

HOUR_NOW = time.time_ns() // BLOCK_NS
FIRST_VALID_NS = 1  # 1970-01-01 (0 would be "unset" to the SDK)
LAST_VALID_NS = 2**63 - 2  # 2262-04-11, the last time DuckDB holds (2**63 - 1 is its infinity)


def _words(rng: random.Random, count: int) -> str:
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=8)) for _ in range(count))


def test_records_dated_1970_and_2262_cost_no_more_than_their_own_grams(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "far.duckdb")
    queries = LogQueries(store)
    rng = random.Random(3)
    now = HOUR_NOW * BLOCK_NS
    # A day of ordinary records: a few thousand grams, each a bit set over the day's hours.
    store.insert_logs(
        log_table([make_record(_words(rng, 6), timestamp=now - i * 10**11) for i in range(800)])
    )
    assert bodies(queries.search("zebra", LogFilter(), 10).logs) == []  # loads the index
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store.insert_logs(log_table([make_record("zebra first", timestamp=FIRST_VALID_NS),
                                     make_record("zebra last", timestamp=LAST_VALID_NS)]))  # fmt: skip
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # A bit set stretched from 1970 to 2262 took 320 KB for each gram already indexed (about 2,000).
    assert grown < 2**20, grown
    assert sorted(bodies(queries.search("zebra", LogFilter(), 10).logs)) == ["zebra first", "zebra last"]
    assert bodies(queries.search("first", LogFilter(), 10).logs) == ["zebra first"]
    store.close()


def test_far_hours_are_kept_sparsely_and_answer_like_near_ones() -> None:
    index = SearchIndex()
    index._blocks = {}  # loaded, empty
    far_past, far_future = 5, LAST_VALID_NS // BLOCK_NS
    index.add([(HOUR_NOW, "abc"), (far_past, "abc"), (far_future, "abc"), (far_future, "bcd")])
    assert index.span({"abc"}) == TimeSpan(far_past * BLOCK_NS, END_OF_TIME_NS)
    assert index.span({"abc", "bcd"}) == TimeSpan(far_future * BLOCK_NS, END_OF_TIME_NS)
    assert index.span({"zzz"}) is None
    assert index.memory_estimate() < 2_000
    index.forget_before(HOUR_NOW)
    assert index.span({"abc"}) == TimeSpan(HOUR_NOW * BLOCK_NS, END_OF_TIME_NS)
    index.add([(far_past + 1, "bcd")])  # an old record stored after the cleanup: kept until the next
    assert index.span({"bcd"}) == TimeSpan((far_past + 1) * BLOCK_NS, END_OF_TIME_NS)
    index.forget_before(HOUR_NOW + 1)
    assert index.span({"bcd"}) == TimeSpan(far_future * BLOCK_NS, END_OF_TIME_NS)
    assert index.span({"abc"}) == TimeSpan(far_future * BLOCK_NS, END_OF_TIME_NS)


def test_past_its_budget_the_index_is_read_from_the_table_with_the_same_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(5)
    records = [make_record(_words(rng, 4), timestamp=(HOUR_NOW - 20_000 - i) * BLOCK_NS) for i in range(300)]
    records += [make_record("needle in the far past", timestamp=10 * BLOCK_NS)]
    records += [make_record("needle of today", timestamp=HOUR_NOW * BLOCK_NS)]
    answers = {}
    for budget in (None, 10_000):
        store = TelemetryStore(tmp_path / f"budget-{budget}.duckdb", memory_limit=None)
        store._search_index.budget_bytes = budget
        store.insert_logs(log_table(records))
        queries = LogQueries(store)
        with caplog.at_level(logging.WARNING):
            answers[budget] = [
                sorted(bodies(queries.search(needle, LogFilter(), 1000).logs))
                for needle in ("needle", "today", "far past", "absent", records[7].log_record.body[:8])
            ]
        assert store.search_index().in_memory is (budget is None)
        store.close()
    assert answers[None] == answers[10_000]
    assert answers[None][0] == ["needle in the far past", "needle of today"]
    assert "search reads it from the database instead" in caplog.text


def test_the_memory_limit_sets_duckdbs_and_the_index_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPETRACE_MEMORY_LIMIT", "256MiB")
    settings = ExporterSettings()
    store = TelemetryStore(tmp_path / "limited.duckdb", settings.memory_limit)
    assert store.cursor().execute("SELECT current_setting('memory_limit')").fetchone() == ("224.0 MiB",)
    assert store.search_index().budget_bytes == 32 * 2**20
    store.close()
    monkeypatch.setenv("PIPETRACE_MEMORY_LIMIT", "10MB")
    with pytest.raises(ValueError, match="greater than or equal"):
        ExporterSettings()
