"""Acceptance: each template runs end to end against a real source on loopback."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import ALLOW_USER_CODE, LiveServer, start_server
from tests.service.pipeline_helpers import create, start, wait_for_logs, wait_for_run
from tests.sources import (
    Postgres,
    api_params,
    sqlite_database,
    start_postgres,
    start_rest_api,
    start_s3,
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("templates")
    server = start_server(
        root / "svc",
        env={
            "FALLBACK_DIRECTORY": str(root / "fallback"),
            "RETRY_DELAY_SECONDS": "0",
            "PIPETRACE_MAX_RUNS": "4",
            **ALLOW_USER_CODE,
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        yield from start_postgres()
    except RuntimeError as error:  # the server could not be had: one line, not a traceback
        pytest.fail(str(error), pytrace=False)


def run_to_end(
    service: LiveServer, template: str, params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    pipeline = create(service, template, params)
    run = wait_for_run(service, start(service, pipeline["id"])["run_id"])
    return pipeline, run


def loaded(service: LiveServer, pipeline: dict[str, Any], sql: str) -> list[Any]:
    path = service.data_dir / "destinations" / f"{pipeline['id']}.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def assert_run_logged(service: LiveServer, pipeline: dict[str, Any], run: dict[str, Any]) -> None:
    """dlt's own lines, with their stages, arrived under the run's id and trace."""
    body = wait_for_logs(
        service,
        f"/api/logs/pipeline/{pipeline['id']}?run_id={run['run_id']}&limit=1000",
        lambda b: {"load"} <= {log["stage"] for log in b["logs"] if log["scope"]["name"] == "dlt"},
    )
    assert all(log["trace_id"] == run["trace_id"] for log in body["logs"])


def test_simple_reads_csv_files_from_a_folder(service: LiveServer, tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    for part in range(2):
        rows = "\n".join(f"{part * 10 + i},name {i}" for i in range(10))
        (folder / f"people_{part}.csv").write_text(f"id,name\n{rows}\n")
    (folder / "ignored.txt").write_text("not matched by the glob")
    pipeline, run = run_to_end(
        service,
        "simple",
        {
            "bucket_url": str(folder),
            "file_glob": "*.csv",
            "table_name": "people",
            "primary_key": "id",
            "write_disposition": "merge",
        },
    )
    assert run["status"] == "succeeded", run["error"]
    assert run["rows_loaded"] == {"people": 20}
    assert loaded(service, pipeline, "SELECT count(DISTINCT id) FROM pipetrace.people") == [(20,)]
    assert_run_logged(service, pipeline, run)


def test_simple_transform_field_renames_casts_derives_and_drops(service: LiveServer, tmp_path: Path) -> None:
    folder = tmp_path / "jsonl"
    folder.mkdir()
    lines = [
        json.dumps({"id": i, "first": f"ann{i}", "last": f"lee{i}", "score": str(i * 2)}) for i in range(8)
    ]
    (folder / "rows.jsonl").write_text("\n".join(lines) + "\n")
    transformations = [
        {"op": "derive", "field": "full_name", "from": ["first", "last"], "separator": " ", "case": "upper"},
        {"op": "rename", "field": "first", "to": "given"},
        {"op": "cast", "field": "score", "type": "integer"},
        {"op": "drop", "field": "last"},
        {"op": "derive", "field": "source", "value": "export"},
    ]
    pipeline, run = run_to_end(
        service,
        "simple_transform_field",
        {
            "bucket_url": str(folder),
            "file_glob": "*.jsonl",
            "file_format": "jsonl",
            "table_name": "people",
            "transformations": transformations,
        },
    )
    assert run["status"] == "succeeded", run["error"]
    rows = loaded(
        service, pipeline, "SELECT id, given, full_name, score, source FROM pipetrace.people ORDER BY id"
    )
    assert rows[3] == (3, "ann3", "ANN3 LEE3", 6, "export")
    columns = {c[0] for c in loaded(service, pipeline, "DESCRIBE pipetrace.people")}
    assert "last" not in columns and "first" not in columns


def test_api_pages_through_a_rest_api_with_a_bearer_token(service: LiveServer) -> None:
    for base_url in start_rest_api():
        pipeline, run = run_to_end(
            service,
            "api",
            api_params(base_url, write_disposition="merge"),
        )
        assert run["status"] == "succeeded", run["error"]
        assert run["rows_loaded"] == {"users": 23}
        assert loaded(service, pipeline, "SELECT count(*) FROM pipetrace.users") == [(23,)]
        assert "token" not in pipeline["params"]
        assert_run_logged(service, pipeline, run)


def test_sql_db_loads_every_table_of_a_sqlite_database(service: LiveServer, tmp_path: Path) -> None:
    db = sqlite_database(tmp_path / "shop.sqlite")
    _, run = run_to_end(
        service, "sql_db", {"connection_url": f"sqlite:///{db}", "primary_keys": {"products": ["sku"]}}
    )
    assert run["status"] == "succeeded", run["error"]
    assert run["rows_loaded"] == {"customers": 30, "products": 12}


def test_sql_db_transform_applies_per_table_transformations(service: LiveServer, tmp_path: Path) -> None:
    db = sqlite_database(tmp_path / "shop.sqlite")
    pipeline, run = run_to_end(
        service,
        "sql_db_transform",
        {
            "connection_url": f"sqlite:///{db}",
            "tables": ["customers"],
            "transformations": {
                "customers": [
                    {"op": "derive", "field": "full_name", "from": ["first", "last"]},
                    {"op": "cast", "field": "score", "type": "integer"},
                    {"op": "drop", "field": "last"},
                ]
            },
        },
    )
    assert run["status"] == "succeeded", run["error"]
    assert loaded(service, pipeline, "SELECT full_name, score FROM pipetrace.customers WHERE id = 4") == [
        ("ann4 lee4", 12)
    ]


def test_sql_db_and_sql_db_old_load_from_postgresql(service: LiveServer, postgres: Postgres) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS events",
        "CREATE TABLE events (id serial PRIMARY KEY, kind text NOT NULL, at timestamptz DEFAULT now())",
        "INSERT INTO events (kind) SELECT 'kind ' || g FROM generate_series(1, 40) g",
    )
    _, run = run_to_end(service, "sql_db", {"connection_url": postgres.url, "tables": ["events"]})
    assert run["status"] == "succeeded", run["error"]
    assert run["rows_loaded"] == {"events": 40}
    legacy, run = run_to_end(
        service,
        "sql_db_old",
        {
            "host": postgres.host,
            "port": postgres.port,
            "username": postgres.user,
            "password": postgres.password,
            "database": postgres.database,
            "tables": ["events"],
            "write_disposition": "replace",
        },
    )
    assert run["status"] == "succeeded", run["error"]
    assert loaded(service, legacy, "SELECT count(*) FROM pipetrace.events") == [(40,)]


def test_sql_db_transform_on_postgresql_and_bad_credentials(service: LiveServer, postgres: Postgres) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS accounts",
        "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance text)",
        "INSERT INTO accounts SELECT g, 'owner ' || g, (g * 100)::text FROM generate_series(1, 12) g",
    )
    pipeline, run = run_to_end(
        service,
        "sql_db_transform",
        {
            "connection_url": postgres.url,
            "tables": ["accounts"],
            "transformations": {
                "accounts": [
                    {"op": "cast", "field": "balance", "type": "integer"},
                    {"op": "derive", "field": "owner_upper", "from": ["owner"], "case": "upper"},
                ]
            },
        },
    )
    assert run["status"] == "succeeded", run["error"]
    assert loaded(service, pipeline, "SELECT balance, owner_upper FROM pipetrace.accounts WHERE id = 2") == [
        (200, "OWNER 2")
    ]
    wrong = postgres.url.replace(postgres.password, "not-the-password")
    pipeline, run = run_to_end(service, "sql_db", {"connection_url": wrong, "tables": ["accounts"]})
    assert run["status"] == "failed"
    assert "password authentication failed" in run["error"]["message"]
    trace = wait_for_logs(
        service,
        f"/api/logs/correlation/{run['trace_id']}",
        lambda body: any(log["severity_text"] == "ERROR" for log in body["logs"]),
    )
    error = next(log for log in trace["logs"] if log["severity_text"] == "ERROR")
    assert "password authentication failed" in error["attributes"]["exception.stacktrace"]
    assert "not-the-password" not in str(trace)  # the URL with the password is a secret: never logged


def test_sql_server_templates_fail_clearly_without_a_server(service: LiveServer) -> None:
    for template in ("sql_server", "sql_server_transform"):
        pipeline, run = run_to_end(
            service,
            template,
            {
                "host": "127.0.0.1",
                "port": 1,
                "username": "sa",
                "password": "Not-Stored-1",
                "database": "shop",
                "tables": ["customers"],
            },
        )
        assert run["status"] == "failed"
        assert run["error"]["type"] in ("OperationalError", "DatabaseError", "InterfaceError")
        trace = wait_for_logs(
            service,
            f"/api/logs/correlation/{run['trace_id']}",
            lambda body: any(log["severity_text"] == "ERROR" for log in body["logs"]),
        )
        error = next(log for log in trace["logs"] if log["severity_text"] == "ERROR")
        assert error["pipeline_id"] == pipeline["id"]
        assert "pymssql" in error["attributes"]["exception.stacktrace"]
        root = next(span for span in trace["spans"] if span["name"].startswith("pipeline "))
        assert root["status"]["code"] == "ERROR" and error["span_id"] == root["span_id"]


def test_sql_server_code_path_runs_against_postgresql(service: LiveServer, postgres: Postgres) -> None:
    postgres.execute(
        "DROP TABLE IF EXISTS items",
        "CREATE TABLE items (id int PRIMARY KEY, label text, qty text)",
        "INSERT INTO items SELECT g, 'item ' || g, (g * 2)::text FROM generate_series(1, 15) g",
    )
    common = {
        "engine": "postgresql+psycopg2",
        "host": postgres.host,
        "port": postgres.port,
        "username": postgres.user,
        "password": postgres.password,
        "database": postgres.database,
        "tables": ["items"],
    }
    pipeline, run = run_to_end(service, "sql_server", common)
    assert run["status"] == "succeeded", run["error"]
    assert run["rows_loaded"] == {"items": 15}
    pipeline, run = run_to_end(
        service,
        "sql_server_transform",
        {
            **common,
            "transformations": {
                "items": [
                    {"op": "cast", "field": "qty", "type": "integer"},
                    {"op": "rename", "field": "label", "to": "title"},
                ]
            },
        },
    )
    assert run["status"] == "succeeded", run["error"]
    assert loaded(service, pipeline, "SELECT title, qty FROM pipetrace.items WHERE id = 3") == [("item 3", 6)]


def test_simple_s3_anon_login_reads_a_public_bucket(service: LiveServer) -> None:
    files = {
        f"exports/2026/part{n}.csv": "id,city\n" + "".join(f"{n * 100 + i},city{i}\n" for i in range(7))
        for n in range(3)
    }
    for endpoint, bucket in start_s3(files):
        pipeline, run = run_to_end(
            service,
            "simple_s3_anon_login",
            {
                "bucket": bucket,
                "prefix": "exports/2026",
                "endpoint_url": endpoint,
                "table_name": "cities",
                "primary_key": "id",
                "chunk_size": 4,
            },
        )
        assert run["status"] == "succeeded", run["error"]
        assert run["rows_loaded"] == {"cities": 21}
        assert_run_logged(service, pipeline, run)


def test_ten_runs_at_once_all_complete_with_their_logs_apart(service: LiveServer) -> None:
    code = textwrap.dedent(
        """
        import logging
        import dlt

        NUMBER = {number}

        @dlt.resource(name="numbers")
        def numbers():
            logging.getLogger("user.code").info("run number %d", NUMBER)
            yield [{{"n": NUMBER, "i": i}} for i in range(NUMBER + 1)]

        def data_source():
            return numbers
        """
    )
    pipelines = [
        create(service, "dlt_code", {"code": code.format(number=n)}, name=f"parallel {n}") for n in range(10)
    ]
    started = [start(service, p["id"]) for p in pipelines]
    runs = [wait_for_run(service, s["run_id"], timeout=300) for s in started]
    assert [run["status"] for run in runs] == ["succeeded"] * 10
    assert [run["rows_loaded"] for run in runs] == [{"numbers": n + 1} for n in range(10)]
    for n, (pipeline, run) in enumerate(zip(pipelines, runs, strict=True)):
        body = wait_for_logs(
            service,
            f"/api/logs/search?q=run+number&pipeline_id={pipeline['id']}",
            lambda b: len(b["logs"]) == 1,
        )
        (line,) = body["logs"]
        assert line["body"] == f"run number {n}" and line["run_id"] == run["run_id"]
        assert line["trace_id"] == run["trace_id"]
    assert len({run["trace_id"] for run in runs}) == 10
