from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from opentelemetry.sdk.resources import Resource

from exporters.records import LOG_ROW_SCHEMA, LogRows, log_table
from exporters.store import TelemetryStore, ingest
from exporters.store.schema import LATEST_VERSION, MIGRATIONS, current_version
from exporters.store.search_index import SearchIndex
from tests.helpers import make_record, make_records


def test_new_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.duckdb")
    assert store.schema_version == LATEST_VERSION
    tables = {
        row[0]
        for row in store.cursor().execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    assert {"logs", "spans", "schema_version"} <= tables
    store.close()
    reopened = TelemetryStore(tmp_path / "t.duckdb")
    count = reopened.cursor().execute("SELECT count(*) FROM schema_version").fetchone()
    assert count == (len(MIGRATIONS),)  # each applied once
    reopened.close()


def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.duckdb"
    con = duckdb.connect(str(path))
    current_version(con)
    con.execute(
        "INSERT INTO schema_version (version, description) VALUES (?, 'from the future')",
        [LATEST_VERSION + 1],
    )
    con.close()
    with pytest.raises(RuntimeError, match="newer than this pipetrace"):
        TelemetryStore(path)


def test_the_same_delivery_is_stored_once(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.duckdb")
    records = make_records(50, start_ns=1_700_000_000_000_000_000)
    assert store.insert_logs(log_table(records)) == 50
    # Sent again, as a retry or a replay does (converted anew, received at another time): not stored.
    assert store.insert_logs(log_table(records, received_ns=1)) == 0
    # Another batch that shares half its records with the first is another delivery, stored whole:
    # records are never matched one by one, so two real records that look alike both stay.
    overlapping = log_table(make_records(100, start_ns=1_700_000_000_000_000_000))
    assert store.insert_logs(overlapping) == 100
    assert store.cursor().execute("SELECT count(*), count(DISTINCT id) FROM logs").fetchone() == (150, 150)
    assert store.cursor().execute("SELECT count(*) FROM deliveries").fetchone() == (2,)
    store.close()


def test_identical_records_in_one_batch_are_all_stored(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.duckdb")
    records = make_records(10, start_ns=1_700_000_000_000_000_000)
    assert store.insert_logs(log_table(records + records[:4])) == 14
    assert store.cursor().execute("SELECT count(DISTINCT id) FROM logs").fetchone() == (14,)
    store.close()


def test_a_record_without_times_keeps_them_absent_and_its_retry_is_not_stored(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.duckdb")
    record = make_record("no clock here", timestamp=0)
    record.log_record.observed_timestamp = None
    assert store.insert_logs(log_table([record], received_ns=1_700_000_000_000_000_000)) == 1
    assert store.insert_logs(log_table([record], received_ns=1_700_000_000_500_000_000)) == 0
    row = store.cursor().execute("SELECT epoch_ns(timestamp), time_absent, observed_timestamp FROM logs")
    assert row.fetchall() == [(1_700_000_000_000_000_000, True, None)]
    store.close()


def test_shared_store_is_one_connection_per_path(tmp_path: Path) -> None:
    first = TelemetryStore.shared(tmp_path / "s.duckdb")
    second = TelemetryStore.shared(tmp_path / "." / "s.duckdb")
    assert first is second
    first.close()
    assert not second.closed  # still used by the second owner
    second.close()
    assert second.closed
    third = TelemetryStore.shared(tmp_path / "s.duckdb")
    assert third is not first
    third.close()


def test_a_second_process_cannot_open_the_file_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    store = TelemetryStore(path)
    probe = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r})"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode != 0
    assert "lock" in probe.stderr.lower()
    store.close()


def test_readiness_check_reports_a_closed_store(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "r.duckdb")
    assert store.check_writable() is None
    store._connection.close()
    problem = store.check_writable()
    assert problem is not None and "closed" in problem.lower()


def test_the_parquet_path_used_at_interpreter_exit_stores_the_same_rows(tmp_path: Path) -> None:
    records = make_records(20, start_ns=1_700_000_000_000_000_000)
    via_arrow = TelemetryStore(tmp_path / "a.duckdb")
    via_arrow.insert_logs(log_table(records))
    via_parquet = TelemetryStore(tmp_path / "p.duckdb")
    rows = log_table(records)
    params: dict[str, int | str] = {"key": str(rows.key), "signal": "logs", "now": 1, "records": 20}
    with via_parquet.writer() as cur:
        stored = ingest.insert_logs(cur, rows, SearchIndex(), params, via_parquet=True)
        assert stored is not None and stored.rows == 20
        assert {gram for _, gram in stored.grams} == {"rec", "eco", "cor", "ord"}  # of "record i", all new
        assert (
            ingest.insert_logs(cur, rows, SearchIndex(), params, via_parquet=True) is None
        )  # delivered before
    for query in (
        "SELECT id, epoch_ns(timestamp), body, pipeline_id, attributes FROM logs ORDER BY id",
        "SELECT block, gram FROM search_grams ORDER BY ALL",
    ):
        assert via_parquet.cursor().execute(query).fetchall() == via_arrow.cursor().execute(query).fetchall()
    via_arrow.close()
    via_parquet.close()


class _InvalidatedConnection:
    """Stands in for a DuckDB handle after a fatal error: every statement fails as DuckDB's would."""

    def cursor(self) -> _InvalidatedConnection:
        return self

    def register(self, *args: object) -> None:
        pass

    def unregister(self, *args: object) -> None:
        pass

    def execute(self, *args: object) -> None:
        raise duckdb.FatalException(
            "FATAL Error: database has been invalidated because of a previous fatal error"
        )

    def close(self) -> None:
        pass


def test_an_invalidated_handle_is_closed_and_the_file_reopened(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "fatal.duckdb")
    real = store._connection
    assert real is not None
    real.close()
    store._connection = _InvalidatedConnection()  # type: ignore[assignment]
    with pytest.raises(duckdb.FatalException):
        store.insert_logs(log_table(make_records(3, start_ns=1)))
    assert store._connection is None and "invalidated" in (store.last_error or "")
    assert store.insert_logs(log_table(make_records(3, start_ns=1))) == 3  # opened again
    assert store.last_error is None
    store.close()


def test_the_exporter_promotes_pipeline_context_as_the_store_does_in_sql(tmp_path: Path) -> None:
    """``records.promote`` derives in Python what ``sql/insert_logs.sql`` derives; both must store
    the same rows: from the attributes or the resource, in their places, typed batches too."""
    owned = Resource.create({"service.name": "s", "pipeline.id": "from-resource", "pipeline.stage": "load"})
    t = 1_700_000_000_000_000_000
    batches = [
        [
            make_record("a", timestamp=t, attributes={"n": 1, "pipeline.id": "p", "pipeline.stage": "x"}),
            make_record("b", timestamp=t + 1, resource=owned),
            make_record("c", timestamp=t + 2, attributes={"pipeline.run_id": "r", "k": "v"}, resource=owned),
            make_record("d", timestamp=t + 3, attributes={"pipeline.id": "q"}),
        ],
        # Bytes: the batch is written in the typed form.
        [make_record("e", timestamp=t + 4, attributes={"b": b"\x01", "pipeline.run_id": "r"})],
        [make_record("f", timestamp=t + 5, attributes={"pipeline.id": 7})],  # not a string: SQL
    ]
    python, sql = TelemetryStore(tmp_path / "python.duckdb"), TelemetryStore(tmp_path / "sql.duckdb")
    promoted_in_python = []
    for records in batches:
        rows = log_table(records)
        promoted_in_python.append(rows.stored_attributes is not None)
        python.insert_logs(rows)
        sql.insert_logs(LogRows(rows.columns.select(LOG_ROW_SCHEMA.names), rows.attributes, rows.key))
    assert promoted_in_python == [True, True, False]
    query = "SELECT * FROM logs ORDER BY timestamp"
    stored = python.cursor().execute(query).fetchall()
    assert stored == sql.cursor().execute(query).fetchall()
    assert [
        row[0]
        for row in python.cursor().execute("SELECT promoted_keys FROM logs ORDER BY timestamp").fetchall()
    ] == [5, 0, 2, 1, 2, 0]
    python.close()
    sql.close()
